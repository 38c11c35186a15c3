using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

/// <summary>
/// A randomized check of what every client receives. Four users, two of them with two devices, act at once through
/// the real gateway: they send messages (some with one key from both of their devices at the same moment, some
/// repeating an old key), edit, delete, read, type, set their presence, sync, add and remove members over HTTP,
/// and drop their sockets and reconnect, with catch-up or without. Every frame each socket receives is recorded.
/// Afterwards the recordings and the database are held to the protocol's rules: each conversation's seqs are 1..N,
/// every ack names the stored row of its key, each socket received every message of a conversation while it
/// received that conversation, in seq order and once, and none outside those spans (the windows around membership
/// changes that protocol §4 allows are allowed here), catch-up and sync answers cover their ranges, each member's
/// unread count is what §10 defines, and a sync from 0 is the stored history with its edits and deletes.
/// </summary>
/// <remarks>
/// The operations of each device come from the seed; their interleaving does not, and every check holds for any
/// interleaving. The seed is in the test's name and in every failure. RANDOM_CHAT_SEEDS (say "1-40") runs other
/// seeds, RANDOM_CHAT_OPS sets the operations per device (60 by default).
/// </remarks>
public sealed class RandomizedChatInvariantTests : GatewayTest
{
    private const int CatchupLimit = 8;
    private static readonly int[] DevicesOf = [2, 2, 1, 1];
    private static readonly int OpsPerDevice = int.TryParse(Environment.GetEnvironmentVariable("RANDOM_CHAT_OPS"), out var ops) ? ops : 60;
    private static readonly string[] Statuses = ["online", "away", "busy", "offline"];

    // A small cap, so that reconnecting clients meet hasMore and fill the rest with sync.
    protected override Dictionary<string, string?> Settings => new() { ["Chat:Limits:CatchupLimitPerConversation"] = CatchupLimit.ToString() };

    public static IEnumerable<int> Seeds()
    {
        if (Environment.GetEnvironmentVariable("RANDOM_CHAT_SEEDS") is { Length: > 0 } range)
        {
            var parts = range.Split('-');
            var (first, last) = (int.Parse(parts[0]), int.Parse(parts[^1]));
            return Enumerable.Range(first, last - first + 1);
        }
        return [101, 202];
    }

    [TestCaseSource(nameof(Seeds))]
    public async Task Every_client_receives_exactly_what_its_memberships_entitle_it_to_and_the_store_stays_consistent(int seed)
    {
        var run = new Run(Gateway, seed);
        try
        {
            await run.SetUpAsync();
            await Task.WhenAll(run.Devices.Select(device => Task.Run(() => run.DriveAsync(device))));
            await run.SettleAsync();
            await run.CheckAsync();
        }
        finally
        {
            await run.DisposeAsync();
        }
        TestContext.Out.WriteLine(run.Summary);
        Assert.That(run.Failures, Is.Empty, $"(seed {seed}) {run.Failures.Count} violations:\n" + string.Join("\n", run.Failures.Take(40)));
    }

    /// <summary>A ticket from one clock shared by everything recorded: a happened-before that the checks lean on.</summary>
    private sealed class Clock
    {
        private long _now;
        public long Next() => Interlocked.Increment(ref _now);
    }

    /// <summary>One socket of a device: every frame it received after ready, with the ticket at which it was read.</summary>
    private sealed class Socket
    {
        private readonly Lock _lock = new();
        private readonly List<(long Ticket, JsonElement Frame)> _frames = [];
        private TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private Task _pump = Task.CompletedTask;

        public required int Id { get; init; }
        public required int User { get; init; }
        public required ChatTestClient Client { get; init; }
        public required bool WithCatchup { get; init; }
        public required long ConnectStart { get; init; }
        public long ReadyTicket { get; private set; }
        /// <summary>When the device began to close it; null while open at the end of the run.</summary>
        public long? CloseStart { get; set; }
        /// <summary>When the socket had closed and its last frame was read.</summary>
        public long? CloseEnd { get; set; }
        public bool Aborted { get; set; }
        public List<(long Conversation, int From, int To)> SyncWindows { get; } = [];

        public void Start(Clock clock)
        {
            ReadyTicket = clock.Next();
            _pump = PumpAsync(clock);
        }

        private async Task PumpAsync(Clock clock)
        {
            while (true)
            {
                var frame = await Client.TryNextAsync(_ => true, TimeSpan.FromSeconds(1));
                if (frame is null)
                {
                    if (Client.Closed.IsCompleted)
                    {
                        break;
                    }
                    continue;
                }
                lock (_lock)
                {
                    _frames.Add((clock.Next(), frame.Value));
                    _arrived.TrySetResult();
                    _arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }
            lock (_lock)
            {
                _arrived.TrySetResult();
            }
        }

        public Task Drained => _pump;

        public int Count
        {
            get
            {
                lock (_lock)
                {
                    return _frames.Count;
                }
            }
        }

        public List<(long Ticket, JsonElement Frame)> Frames
        {
            get
            {
                lock (_lock)
                {
                    return [.. _frames];
                }
            }
        }

        /// <summary>The first frame from index <paramref name="from"/> on that matches, and its index.</summary>
        public async Task<(int Index, JsonElement Frame)> WaitForAsync(int from, Func<JsonElement, bool> match, string what)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (true)
            {
                Task arrived;
                lock (_lock)
                {
                    for (var i = from; i < _frames.Count; i++)
                    {
                        if (match(_frames[i].Frame))
                        {
                            return (i, _frames[i].Frame);
                        }
                    }
                    from = _frames.Count;
                    arrived = _arrived.Task;
                }
                if (_pump.IsCompleted || DateTime.UtcNow > deadline)
                {
                    throw new AssertionException($"socket {Id} of user {User}: no {what} (closed: {_pump.IsCompleted})");
                }
                await Task.WhenAny(arrived, Task.Delay(200));
            }
        }
    }

    private sealed class Device
    {
        public required int User { get; init; }
        public required int Index { get; init; }
        public required Random Random { get; init; }
        public Socket Socket { get; set; } = null!;
        public int Counter;
    }

    /// <summary>One conversation: who may change membership in it, and the state the serialized membership changes left.</summary>
    private sealed class Conversation
    {
        public required long Id { get; init; }
        public required string Kind { get; init; }
        public required int[] Members { get; init; }
        /// <summary>The users whose membership changes here; each pair's changes run one at a time.</summary>
        public required int[] Changing { get; init; }
        public readonly SemaphoreSlim Membership = new(1, 1);
        public readonly Dictionary<int, bool> Active = [];
        public readonly Dictionary<int, List<MembershipChange>> Changes = [];
    }

    private sealed record MembershipChange(bool Added, long Start, long End, long JoinedSeq);

    private sealed record Ack(long Ticket, int Socket, int User, string Key, long ConversationId, long MessageId, long Seq, string Timestamp);

    private sealed record Send(long Start, int Socket, int User, string Key, string Content);

    private sealed record Presence(long Start, long End, int Socket, int User, string Status);

    private sealed class Run(TestGateway gateway, int seed) : IAsyncDisposable
    {
        private readonly Clock _clock = new();
        private readonly ConcurrentBag<Ack> _acks = [];
        private readonly ConcurrentBag<Send> _sends = [];
        private readonly ConcurrentBag<Presence> _presences = [];
        private readonly ConcurrentDictionary<long, ConcurrentBag<string>> _edits = [];
        private readonly ConcurrentBag<Socket> _sockets = [];
        private readonly ConcurrentQueue<string> _failures = [];
        private int _nextSocket;
        private long _barrier = 1_000_000_000;
        private TestUser[] _users = [];
        private HttpClient[] _http = [];
        private Conversation[] _conversations = [];
        private Conversation _lobby = null!;

        public List<Device> Devices { get; } = [];

        public List<string> Failures => [.. _failures];

        public string Summary { get; private set; } = "";

        private void Fail(string what) => _failures.Enqueue(what);

        public async Task SetUpAsync()
        {
            _users = await gateway.CreateUsersAsync(DevicesOf.Length, $"r{seed}");
            _http = [.. _users.Select(u => gateway.CreateHttpClient(u.ExternalId))];
            _lobby = await CreateAsync("lobby", 0, [1, 2, 3], isGroup: true, changing: []);
            _conversations =
            [
                _lobby,
                await CreateAsync("group-a", 0, [1, 2], isGroup: true, changing: [1, 2, 3]),
                await CreateAsync("group-b", 0, [3, 1], isGroup: true, changing: [1, 2, 3]),
                await CreateAsync("direct", 1, [2], isGroup: false, changing: [1, 2]),
            ];
            for (var u = 0; u < DevicesOf.Length; u++)
            {
                for (var d = 0; d < DevicesOf[u]; d++)
                {
                    var device = new Device { User = u, Index = d, Random = new Random(seed * 100 + u * 10 + d) };
                    device.Socket = await ConnectAsync(u, catchup: true);
                    Devices.Add(device);
                }
            }
        }

        private async Task<Conversation> CreateAsync(string title, int creator, int[] others, bool isGroup, int[] changing)
        {
            var response = await _http[creator].PostAsJsonAsync("/api/conversations",
                new { title, isGroup, memberExternalIds = others.Select(o => _users[o].ExternalId).ToArray() });
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created));
            var conversation = new Conversation
            {
                Id = (await response.Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId"),
                Kind = title,
                Members = [creator, .. others],
                Changing = changing,
            };
            for (var u = 0; u < DevicesOf.Length; u++)
            {
                conversation.Active[u] = conversation.Members.Contains(u);
                conversation.Changes[u] = [];
            }
            return conversation;
        }

        private async Task<Socket> ConnectAsync(int user, bool catchup)
        {
            var start = _clock.Next();
            var client = await ChatTestClient.ConnectAsync(gateway.WebSocketAddress, gateway.TokenFor(_users[user].ExternalId), catchup ? null : "catchup=false");
            await client.ReadUntilReadyAsync();
            var socket = new Socket { Id = Interlocked.Increment(ref _nextSocket), User = user, Client = client, WithCatchup = catchup, ConnectStart = start };
            socket.Start(_clock);
            _sockets.Add(socket);
            return socket;
        }

        public async Task DriveAsync(Device device)
        {
            var random = device.Random;
            for (var op = 0; op < OpsPerDevice; op++)
            {
                var conversation = _conversations[random.Next(_conversations.Length)];
                var roll = random.Next(100);
                try
                {
                    if (roll < 30)
                    {
                        await SendAsync(device.Socket, device.User, conversation, $"u{device.User}-{device.Index}-{++device.Counter}");
                    }
                    else if (roll < 36)
                    {
                        // One key from every device of the user at once, as a client that resends on each device.
                        var key = $"u{device.User}-{device.Index}-twin-{++device.Counter}";
                        await Task.WhenAll(Devices.Where(d => d.User == device.User).Select(d => d == device
                            ? SendAsync(device.Socket, device.User, conversation, key)
                            : SendFromOtherDeviceAsync(d.Socket, device.User, conversation, key)));
                    }
                    else if (roll < 41)
                    {
                        var mine = _acks.Where(a => a.User == device.User).ToList();
                        if (mine.Count > 0)
                        {
                            await ResendAsync(device, mine[random.Next(mine.Count)], _conversations[random.Next(_conversations.Length)]);
                        }
                    }
                    else if (roll < 51)
                    {
                        await EditOrDeleteAsync(device, conversation, delete: false);
                    }
                    else if (roll < 57)
                    {
                        await EditOrDeleteAsync(device, conversation, delete: true);
                    }
                    else if (roll < 70)
                    {
                        await ReadAsync(device, conversation);
                    }
                    else if (roll < 76)
                    {
                        await device.Socket.Client.SendAsync(new { type = "typing", conversationId = conversation.Id, isTyping = random.Next(3) > 0 });
                    }
                    else if (roll < 81)
                    {
                        await SetPresenceAsync(device, Statuses[random.Next(Statuses.Length)]);
                    }
                    else if (roll < 88)
                    {
                        await SyncAsync(device.Socket, conversation.Id, random.Next(2) == 0 ? 0 : random.Next(10));
                    }
                    else if (roll < 95)
                    {
                        await ChangeMembershipAsync(device, conversation);
                    }
                    else
                    {
                        await ReconnectAsync(device);
                    }
                }
                catch (AssertionException e)
                {
                    Fail($"device {device.User}.{device.Index}, operation {op}: {e.Message}");
                    return;
                }
                if (random.Next(4) == 0)
                {
                    await Task.Delay(random.Next(1, 6));
                }
            }
        }

        private async Task SendAsync(Socket socket, int user, Conversation conversation, string key)
        {
            var content = $"{key} from socket {socket.Id} to {conversation.Kind}";
            _sends.Add(new Send(_clock.Next(), socket.Id, user, key, content));
            var from = socket.Count;
            await socket.Client.SendAsync(new { type = "message", conversationId = conversation.Id, clientMessageId = key, content });
            var (_, answer) = await socket.WaitForAsync(from, f => f.Type() is "ack" or "error" && f.Str("clientMessageId") == key, $"answer to {key}");
            RecordAnswer(socket, user, key, answer);
        }

        /// <summary>A send on a device that runs operations of its own, and may be closing its socket meanwhile: then its answer may not come.</summary>
        private async Task SendFromOtherDeviceAsync(Socket socket, int user, Conversation conversation, string key)
        {
            try
            {
                await SendAsync(socket, user, conversation, key);
            }
            catch (Exception e) when (socket.CloseStart is not null && e is AssertionException or System.Net.WebSockets.WebSocketException or ObjectDisposedException)
            {
            }
        }

        private async Task ResendAsync(Device device, Ack original, Conversation conversation)
        {
            var socket = device.Socket;
            var from = socket.Count;
            await socket.Client.SendAsync(new { type = "message", conversationId = conversation.Id, clientMessageId = original.Key, content = "again" });
            var (_, answer) = await socket.WaitForAsync(from, f => f.Type() is "ack" or "error" && f.Str("clientMessageId") == original.Key, $"answer to the resend of {original.Key}");
            if (answer.Type() != "ack")
            {
                Fail($"socket {socket.Id}: the resend of {original.Key} (stored as message {original.MessageId}) was answered {answer}");
                return;
            }
            RecordAnswer(socket, device.User, original.Key, answer);
        }

        private void RecordAnswer(Socket socket, int user, string key, JsonElement answer)
        {
            if (answer.Type() == "ack")
            {
                _acks.Add(new Ack(_clock.Next(), socket.Id, user, key, answer.Long("conversationId"), answer.Long("messageId"), answer.Long("seq"), answer.Str("timestamp")!));
            }
            else if (answer.Str("code") != "access_denied")
            {
                Fail($"socket {socket.Id}: message {key} was answered {answer}");
            }
        }

        private async Task EditOrDeleteAsync(Device device, Conversation conversation, bool delete)
        {
            var mine = _acks.Where(a => a.User == device.User && a.ConversationId == conversation.Id).ToList();
            if (mine.Count == 0)
            {
                return;
            }
            var target = mine[device.Random.Next(mine.Count)];
            if (delete)
            {
                await device.Socket.Client.SendAsync(new { type = "delete", conversationId = conversation.Id, messageId = target.MessageId });
            }
            else
            {
                var content = $"edit {device.User}.{device.Index}.{++device.Counter}";
                _edits.GetOrAdd(target.MessageId, _ => []).Add(content);
                await device.Socket.Client.SendAsync(new { type = "edit", conversationId = conversation.Id, messageId = target.MessageId, content });
            }
            await BarrierAsync(device.Socket);
        }

        private async Task ReadAsync(Device device, Conversation conversation)
        {
            var messages = _acks.Where(a => a.ConversationId == conversation.Id).ToList();
            if (messages.Count == 0)
            {
                return;
            }
            var target = device.Random.Next(2) == 0 ? messages.MaxBy(a => a.Seq)! : messages[device.Random.Next(messages.Count)];
            await device.Socket.Client.SendAsync(new { type = "read", conversationId = conversation.Id, messageId = target.MessageId });
            await BarrierAsync(device.Socket);
        }

        private async Task SetPresenceAsync(Device device, string status)
        {
            var start = _clock.Next();
            await device.Socket.Client.SendAsync(new { type = "presence", presenceStatus = status });
            await BarrierAsync(device.Socket);
            _presences.Add(new Presence(start, _clock.Next(), device.Socket.Id, device.User, status));
        }

        /// <summary>Frames of one socket are handled in order: once a sync sent after them is answered, they were handled.</summary>
        private async Task BarrierAsync(Socket socket)
        {
            var marker = Interlocked.Increment(ref _barrier);
            var from = socket.Count;
            await socket.Client.SendAsync(new { type = "sync", conversationId = _lobby.Id, afterSeq = marker, limit = 1 });
            await socket.WaitForAsync(from, f => f.Type() == "synced" && f.Long("afterSeq") == marker, "the barrier's synced");
        }

        private async Task SyncAsync(Socket socket, long conversationId, long afterSeq)
        {
            var from = socket.Count;
            await socket.Client.SendAsync(new { type = "sync", conversationId, afterSeq, limit = 500 });
            var (to, answer) = await socket.WaitForAsync(from, f =>
                (f.Type() == "synced" && f.Long("conversationId") == conversationId && f.Long("afterSeq") == afterSeq)
                || (f.Type() == "error" && f.Str("frameType") == "sync" && f.Long("conversationId") == conversationId), $"the answer to sync {conversationId} after {afterSeq}");
            lock (socket.SyncWindows)
            {
                socket.SyncWindows.Add((conversationId, from, to));
            }
            if (answer.Type() == "error")
            {
                if (answer.Str("code") != "access_denied")
                {
                    Fail($"socket {socket.Id}: sync of {conversationId} answered {answer}");
                }
                return;
            }
            var frames = socket.Frames.Skip(from).Take(to - from).Select(f => f.Frame).Where(f => ConversationOf(f) == conversationId).ToList();
            var replayed = frames.Where(f => f.Type() == "message" && f.GetProperty("isCatchup").GetBoolean()).ToList();
            var lastSeq = answer.Long("lastSeq");
            var where = $"socket {socket.Id}: sync of conversation {conversationId} after {afterSeq} (lastSeq {lastSeq})";
            var seqs = replayed.Select(f => f.Long("seq")).ToList();
            if (!seqs.Zip(seqs.Skip(1)).All(p => p.First < p.Second) || seqs.Any(s => s <= afterSeq || s > lastSeq))
            {
                Fail($"{where}: replayed seqs {string.Join(",", seqs)} are not increasing within the range");
            }
            var covered = seqs.Concat(frames.Where(f => f.Type() == "messageDeleted").Select(f => f.Long("seq"))).ToHashSet();
            var holes = Range(afterSeq, lastSeq).Where(s => !covered.Contains(s)).ToList();
            if (holes.Count > 0)
            {
                Fail($"{where}: seqs {string.Join(",", holes)} neither replayed nor shown deleted");
            }
            if (answer.GetProperty("hasMore").GetBoolean())
            {
                Fail($"{where}: hasMore with fewer than 500 messages");
            }
        }

        private async Task ReconnectAsync(Device device)
        {
            var old = device.Socket;
            old.CloseStart = _clock.Next();
            if (device.Random.Next(3) == 0)
            {
                old.Aborted = true;
                old.Client.Abort();
            }
            else
            {
                await old.Client.CloseAsync();
            }
            await old.Drained;
            old.CloseEnd = _clock.Next();
            var catchup = device.Random.Next(3) > 0;
            var socket = device.Socket = await ConnectAsync(device.User, catchup);
            // As a client does after hasMore (or without catch-up): sync from the last seq it holds.
            foreach (var entry in socket.Client.Ready.GetProperty("conversations").EnumerateArray().Where(e => e.GetProperty("hasMore").GetBoolean()))
            {
                var id = entry.Long("conversationId");
                var held = socket.Client.Catchup.Where(m => m.Long("conversationId") == id).Select(m => m.Long("seq")).DefaultIfEmpty(0).Max();
                await SyncAsync(socket, id, held);
            }
        }

        private async Task ChangeMembershipAsync(Device device, Conversation conversation)
        {
            if (conversation.Changing.Length == 0)
            {
                return;
            }
            var random = device.Random;
            var target = conversation.Changing[random.Next(conversation.Changing.Length)];
            await conversation.Membership.WaitAsync();
            try
            {
                var start = _clock.Next();
                HttpResponseMessage response;
                var added = !conversation.Active[target];
                if (!added)
                {
                    // Leaving, or (in a group) removed by its anchor, who never leaves.
                    var by = conversation.Kind == "direct" || random.Next(2) == 0 ? target : 0;
                    response = await _http[by].DeleteAsync($"/api/conversations/{conversation.Id}/members/{Uri.EscapeDataString(_users[target].ExternalId)}");
                    Expect(response, HttpStatusCode.NoContent, $"user {by} removes user {target} from {conversation.Kind}");
                }
                else if (conversation.Kind == "direct")
                {
                    // Asking for the direct conversation again brings back whoever left it.
                    var other = conversation.Members.Single(m => m != target);
                    response = await _http[target].PostAsJsonAsync("/api/conversations", new { isGroup = false, memberExternalIds = new[] { _users[other].ExternalId } });
                    Expect(response, HttpStatusCode.OK, $"user {target} reopens the direct conversation");
                }
                else
                {
                    response = await _http[0].PostAsJsonAsync($"/api/conversations/{conversation.Id}/members", new { externalId = _users[target].ExternalId });
                    Expect(response, HttpStatusCode.Created, $"user 0 adds user {target} to {conversation.Kind}");
                }
                var end = _clock.Next();
                var joinedSeq = await Sql.ScalarAsync<long>("SELECT joined_seq FROM conversation_participants WHERE conversation_id = @c AND user_id = @u",
                    new { c = conversation.Id, u = _users[target].Id });
                conversation.Changes[target].Add(new MembershipChange(added, start, end, joinedSeq));
                conversation.Active[target] = added;
                if (conversation.Kind == "direct" && added)
                {
                    // The reopening brought back the other member too, had they left.
                    var other = conversation.Members.Single(m => m != target);
                    if (!conversation.Active[other])
                    {
                        var otherSeq = await Sql.ScalarAsync<long>("SELECT joined_seq FROM conversation_participants WHERE conversation_id = @c AND user_id = @u",
                            new { c = conversation.Id, u = _users[other].Id });
                        conversation.Changes[other].Add(new MembershipChange(true, start, end, otherSeq));
                        conversation.Active[other] = true;
                    }
                }
            }
            finally
            {
                conversation.Membership.Release();
            }
        }

        private static void Expect(HttpResponseMessage response, HttpStatusCode status, string what)
        {
            if (response.StatusCode != status)
            {
                throw new AssertionException($"{what}: {(int)response.StatusCode}, expected {(int)status}");
            }
        }

        /// <summary>Lets every open socket receive the last messages of the conversations it receives, and the last presence changes.</summary>
        public async Task SettleAsync()
        {
            var lastSeqs = await LastSeqsAsync();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
            foreach (var device in Devices)
            {
                var socket = device.Socket;
                while (DateTime.UtcNow < deadline && Analyze(socket, lastSeqs, final: false).Lagging)
                {
                    await Task.Delay(20);
                }
            }
            await Task.Delay(200);
        }

        private async Task<Dictionary<long, long>> LastSeqsAsync() =>
            (await Sql.QueryAsync<(long Id, long LastSeq)>("SELECT id, last_seq FROM conversations WHERE id = ANY(@ids)",
                new { ids = _conversations.Select(c => c.Id).ToArray() })).ToDictionary(r => r.Id, r => r.LastSeq);

        private sealed class StoredMessage
        {
            public long Id { get; init; }
            public long ConversationId { get; init; }
            public long Seq { get; init; }
            public long SenderId { get; init; }
            public required string ClientMessageId { get; init; }
            public required string Content { get; init; }
            public bool IsEdited { get; init; }
            public bool IsDeleted { get; init; }
            public long? FirstSend { get; set; }
            public long? FirstAck { get; set; }
        }

        private Dictionary<long, StoredMessage> _byId = [];
        private Dictionary<long, List<StoredMessage>> _byConversation = [];

        public async Task CheckAsync()
        {
            var ids = _conversations.Select(c => c.Id).ToArray();
            var rows = await Sql.QueryAsync<StoredMessage>("""
                SELECT id AS Id, conversation_id AS ConversationId, seq AS Seq, sender_id AS SenderId, client_message_id AS ClientMessageId,
                       content AS Content, is_edited AS IsEdited, is_deleted AS IsDeleted
                FROM messages WHERE conversation_id = ANY(@ids) ORDER BY conversation_id, seq
                """, new { ids });
            _byId = rows.ToDictionary(m => m.Id);
            _byConversation = ids.ToDictionary(id => id, id => rows.Where(m => m.ConversationId == id).ToList());
            var lastSeqs = await LastSeqsAsync();
            var userIndex = _users.Select((u, i) => (u.Id, i)).ToDictionary(p => p.Id, p => p.i);

            // The store: seqs 1..N; each key of a sender once; every ack the stored row of its key.
            foreach (var conversation in _conversations)
            {
                var list = _byConversation[conversation.Id];
                if (!list.Select(m => m.Seq).SequenceEqual(Range(0, list.Count)))
                {
                    Fail($"{conversation.Kind}: seqs are {string.Join(",", list.Select(m => m.Seq))}");
                }
                if (lastSeqs[conversation.Id] != list.Count)
                {
                    Fail($"{conversation.Kind}: last_seq {lastSeqs[conversation.Id]} with {list.Count} messages");
                }
            }
            foreach (var twice in rows.GroupBy(m => (m.SenderId, m.ClientMessageId)).Where(g => g.Count() > 1))
            {
                Fail($"the key {twice.Key.ClientMessageId} of user {twice.Key.SenderId} is stored {twice.Count()} times");
            }
            var byKey = rows.ToDictionary(m => (userIndex[m.SenderId], m.ClientMessageId));
            foreach (var group in _acks.GroupBy(a => (a.User, a.Key)))
            {
                if (!byKey.TryGetValue(group.Key, out var row))
                {
                    Fail($"user {group.Key.User}'s key {group.Key.Key} was acknowledged but is not stored");
                    continue;
                }
                foreach (var ack in group)
                {
                    if ((ack.MessageId, ack.ConversationId, ack.Seq) != (row.Id, row.ConversationId, row.Seq))
                    {
                        Fail($"socket {ack.Socket}: the ack of {ack.Key} names message {ack.MessageId} (seq {ack.Seq}), stored as {row.Id} (seq {row.Seq})");
                    }
                }
                if (group.Select(a => a.Timestamp).Distinct().Count() > 1)
                {
                    Fail($"the acks of user {group.Key.User}'s key {group.Key.Key} carry different timestamps: {string.Join(", ", group.Select(a => a.Timestamp).Distinct())}");
                }
                row.FirstAck = group.Min(a => a.Ticket);
            }
            foreach (var row in rows)
            {
                row.FirstSend = _sends.Where(s => s.User == userIndex[row.SenderId] && s.Key == row.ClientMessageId).Select(s => (long?)s.Start).Min();
                if (row.FirstSend is null)
                {
                    Fail($"message {row.Id} (key {row.ClientMessageId}) is stored but nobody sent it");
                }
                else if (row.FirstAck is null)
                {
                    Fail($"message {row.Id} (key {row.ClientMessageId}) is stored but was never acknowledged");
                }
            }

            // What each socket received.
            foreach (var socket in _sockets.OrderBy(s => s.Id))
            {
                Analyze(socket, lastSeqs, final: true);
            }

            await CheckPresenceAsync();
            await CheckUnreadAndCatchupAsync();
            await CheckSyncFromZeroAsync();

            Summary = $"(seed {seed}) {rows.Count} messages ({rows.Count(m => m.IsDeleted)} deleted, {rows.Count(m => m.IsEdited)} edited), " +
                      $"{_acks.Count} acks, {_sockets.Count} sockets, {_conversations.Sum(c => c.Changes.Values.Sum(l => l.Count))} membership changes, " +
                      $"{_pinned} member frames pinned to their change, {_unpinned} not";
        }

        private int _pinned;
        private int _unpinned;

        private sealed class Span
        {
            public required long Conversation { get; init; }
            public MembershipChange? Joined { get; set; }
            /// <summary>Received from before ready, which leaves it out: the user was removed while the socket started.</summary>
            public bool RemovedWhileStarting { get; init; }
            public long? ReadyLastSeq { get; init; }
            public MembershipChange? Left { get; set; }
            public bool EndedByLeft { get; set; }
            public readonly List<long> Received = [];
        }

        private readonly record struct Analysis(bool Lagging);

        /// <summary>
        /// Walks a socket's frames: the spans in which it received each conversation (from ready or its joined, to its
        /// left or its close), and in each the messages it received. With <paramref name="final"/>, records every
        /// violation; otherwise only says whether an open socket still lags behind the last seqs.
        /// </summary>
        private Analysis Analyze(Socket socket, Dictionary<long, long> lastSeqs, bool final)
        {
            var frames = socket.Frames;
            var me = _users[socket.User].Id;
            var name = $"socket {socket.Id} (user {socket.User}{(socket.WithCatchup ? "" : ", no catch-up")})";
            var open = new Dictionary<long, Span>();
            var spans = new List<Span>();
            var flips = new Dictionary<long, List<(long Ticket, bool Joined)>>();
            var everReceived = new HashSet<long>();
            var ready = socket.Client.Ready.GetProperty("conversations").EnumerateArray().ToList();
            var ours = _conversations.Select(c => c.Id).ToHashSet();
            foreach (var entry in ready.Where(e => ours.Contains(e.Long("conversationId"))))
            {
                var span = new Span { Conversation = entry.Long("conversationId"), ReadyLastSeq = entry.Long("lastSeq") };
                open[span.Conversation] = span;
                spans.Add(span);
                everReceived.Add(span.Conversation);
            }
            // A removal committed while the socket was starting: the socket was subscribed before it, ready (read after
            // it) leaves the conversation out, and the frames held meanwhile follow ready, ending with left.
            foreach (var conversation in ours.Where(id => !open.ContainsKey(id)))
            {
                var first = frames.Select(f => f.Frame).FirstOrDefault(f => f.Type() == "member" && ConversationOf(f) == conversation && f.Long("userId") == me);
                if (first.ValueKind != JsonValueKind.Undefined && first.Str("change") == "left")
                {
                    var span = new Span { Conversation = conversation, RemovedWhileStarting = true };
                    open[conversation] = span;
                    spans.Add(span);
                    everReceived.Add(conversation);
                }
            }
            List<(long Conversation, int From, int To)> windows;
            lock (socket.SyncWindows)
            {
                windows = [.. socket.SyncWindows];
            }
            var violations = new List<string>();
            var readPositions = new Dictionary<(long, long), long>();
            for (var i = 0; i < frames.Count; i++)
            {
                var (ticket, frame) = frames[i];
                var type = frame.Type();
                var conversation = ConversationOf(frame);
                if (conversation != 0 && !ours.Contains(conversation))
                {
                    continue;
                }
                open.TryGetValue(conversation, out var current);
                var inSync = windows.Any(w => w.Conversation == conversation && w.From <= i && i < w.To);
                switch (type)
                {
                    case "message" when frame.GetProperty("isCatchup").GetBoolean():
                        if (!inSync)
                        {
                            violations.Add($"{name}: a replayed message (seq {frame.Long("seq")} of {conversation}) outside any sync answer");
                        }
                        break;
                    case "message":
                        var seq = frame.Long("seq");
                        if (current is null)
                        {
                            violations.Add($"{name}: message seq {seq} of conversation {conversation} while not receiving it");
                        }
                        else if (current.Received.Count > 0 && seq <= current.Received[^1])
                        {
                            violations.Add($"{name}: message seq {seq} of conversation {conversation} after seq {current.Received[^1]}");
                        }
                        else
                        {
                            current.Received.Add(seq);
                        }
                        break;
                    case "messageEdited" or "read" when current is null:
                        violations.Add($"{name}: {type} {frame} while not receiving the conversation");
                        break;
                    case "read":
                        // Protocol §10: a reader's position only moves forward, and its receipts are announced in order.
                        var reader = (conversation, frame.Long("senderId"));
                        var position = _byId.TryGetValue(frame.Long("messageId"), out var read) ? read.Seq : 0;
                        if (final && readPositions.TryGetValue(reader, out var before) && position <= before)
                        {
                            violations.Add($"{name}: user {reader.Item2} read seq {position} of conversation {conversation} after seq {before}");
                        }
                        readPositions[reader] = position;
                        break;
                    case "messageDeleted" when current is null && !inSync:
                        violations.Add($"{name}: {type} {frame} while not receiving the conversation");
                        break;
                    case "typing" when !everReceived.Contains(conversation):
                        violations.Add($"{name}: typing in conversation {conversation}, which it never received");
                        break;
                    case "error" when frame.Str("code") is not ("access_denied" or "not_found"):
                        violations.Add($"{name}: error {frame}");
                        break;
                    case "member" when frame.Long("userId") == me:
                        var joined = frame.Str("change") == "joined";
                        if (joined && current is not null)
                        {
                            // An addition committed while the socket read its conversations: it already receives it.
                            break;
                        }
                        if (joined)
                        {
                            var span = new Span { Conversation = conversation };
                            open[conversation] = span;
                            spans.Add(span);
                            everReceived.Add(conversation);
                        }
                        else if (!joined && current is not null)
                        {
                            current.EndedByLeft = true;
                            open.Remove(conversation);
                        }
                        else
                        {
                            violations.Add($"{name}: left for its own user in conversation {conversation} while not receiving it");
                            break;
                        }
                        if (!flips.TryGetValue(conversation, out var list))
                        {
                            flips[conversation] = list = [];
                        }
                        list.Add((ticket, joined));
                        break;
                }
            }

            if (!final)
            {
                // An open socket lags while it has not received a conversation it receives up to its last seq.
                var lagging = socket.CloseStart is null && open.Values.Any(span =>
                    Math.Max(span.Received.LastOrDefault(), OwnAcks(socket, span.Conversation).DefaultIfEmpty(0).Max()) < lastSeqs[span.Conversation]
                    && (span.ReadyLastSeq ?? 0) < lastSeqs[span.Conversation]);
                return new Analysis(lagging);
            }

            foreach (var violation in violations)
            {
                Fail(violation);
            }
            CheckCatchup(socket, name);
            PinSpans(socket, spans, flips, name);
            foreach (var span in spans)
            {
                CheckSpan(socket, span, open.ContainsValue(span), lastSeqs, name);
            }
            return new Analysis(false);
        }

        private IEnumerable<long> OwnAcks(Socket socket, long conversation) =>
            _acks.Where(a => a.Socket == socket.Id && a.ConversationId == conversation).Select(a => a.Seq);

        /// <summary>
        /// Pins each span that a membership change opened or closed to that change. A user's changes of one conversation
        /// run one at a time and alternate, so the socket's joined/left frames are a run of consecutive changes: the run
        /// is found from the tickets (a frame comes after its change began; a change that ended before the socket
        /// connected is not seen, one made wholly while it was live is). When more than one run fits, the spans are
        /// left unpinned, and only the checks that need no change are made.
        /// </summary>
        private void PinSpans(Socket socket, List<Span> spans, Dictionary<long, List<(long Ticket, bool Joined)>> flips, string name)
        {
            foreach (var conversation in _conversations)
            {
                var changes = conversation.Changes[socket.User];
                var seen = flips.GetValueOrDefault(conversation.Id, []);
                if (seen.Count == 0 && changes.Count == 0)
                {
                    continue;
                }
                var fits = new List<int>();
                for (var first = 0; first + seen.Count <= changes.Count; first++)
                {
                    var fit = true;
                    for (var k = 0; k < changes.Count && fit; k++)
                    {
                        var inRun = k >= first && k < first + seen.Count;
                        // A frame queued before the client asked to close still reaches it, and one queued while the
                        // close handshake runs may: only an abort loses what was queued.
                        var surelySeen = changes[k].Start > socket.ReadyTicket && (socket.CloseStart is null || (!socket.Aborted && changes[k].End < socket.CloseStart));
                        var surelyUnseen = changes[k].End < socket.ConnectStart || changes[k].Start > socket.CloseEnd;
                        fit = inRun
                            ? !surelyUnseen && changes[k].Added == seen[k - first].Joined && changes[k].Start < seen[k - first].Ticket
                            : !surelySeen;
                    }
                    if (fit)
                    {
                        fits.Add(first);
                    }
                }
                if (fits.Count == 0)
                {
                    Fail($"{name}: its member frames for {conversation.Kind} ({string.Join(",", seen.Select(s => s.Joined ? "joined" : "left"))}) fit no run of the changes made " +
                         $"({string.Join(",", changes.Select(ch => (ch.Added ? "add" : "remove") + $"@{ch.Start}-{ch.End}"))}; socket {socket.ConnectStart}-{socket.ReadyTicket}-{socket.CloseStart}-{socket.CloseEnd})");
                    continue;
                }
                if (fits.Count > 1)
                {
                    _unpinned += seen.Count;
                    continue;
                }
                _pinned += seen.Count;
                var flip = fits[0];
                foreach (var span in spans.Where(s => s.Conversation == conversation.Id))
                {
                    if (span.ReadyLastSeq is null && !span.RemovedWhileStarting)
                    {
                        span.Joined = changes[flip++];
                    }
                    if (span.EndedByLeft)
                    {
                        span.Left = changes[flip++];
                    }
                }
            }
        }

        private void CheckSpan(Socket socket, Span span, bool openAtEnd, Dictionary<long, long> lastSeqs, string name)
        {
            var messages = _byConversation[span.Conversation];
            var bySeq = messages.ToDictionary(m => m.Seq);
            var kind = _conversations.Single(c => c.Id == span.Conversation).Kind;
            var own = OwnAcks(socket, span.Conversation).ToHashSet();
            var held = span.Received.Concat(own).ToHashSet();
            var where = $"{name} in {kind} ({span.Conversation}) from {(span.ReadyLastSeq is { } l ? $"ready (lastSeq {l})" : span.RemovedWhileStarting ? "before ready" : "joined")} to {(span.EndedByLeft ? "left" : openAtEnd ? socket.CloseStart is null ? "the end" : socket.Aborted ? "its abort" : "its close" : "?")}";

            // A socket gets an ack for what it sent, not a copy.
            foreach (var seq in span.Received)
            {
                if (bySeq.TryGetValue(seq, out var message) && message.SenderId == _users[socket.User].Id
                    && _sends.Where(a => a.User == socket.User && a.Key == message.ClientMessageId).All(a => a.Socket == socket.Id))
                {
                    Fail($"{where}: received a copy of its own message seq {seq}");
                }
            }

            long from;
            if (span.ReadyLastSeq is { } readySeq)
            {
                from = readySeq;
                if (span.Received.Any(s => s <= readySeq))
                {
                    Fail($"{where}: received seq {span.Received.First(s => s <= readySeq)} live though catch-up covered it");
                }
            }
            else if (span.Joined is { } joined)
            {
                from = joined.JoinedSeq;
                // Protocol §4: a message stored before the addition may still arrive, but only one published while the
                // addition was being applied, never one acknowledged before it began.
                var before = messages.Where(m => m.FirstAck < joined.Start).Select(m => m.Seq).DefaultIfEmpty(0).Max();
                if (span.Received.FirstOrDefault(s => s <= before) is var early and > 0)
                {
                    Fail($"{where}: received seq {early}, acknowledged before the addition began (joined at seq {joined.JoinedSeq})");
                }
            }
            else
            {
                from = span.Received.Count > 0 ? span.Received[0] - 1 : long.MaxValue;
                if (span.RemovedWhileStarting && span.Left is { } removal && removal.Start > socket.ReadyTicket)
                {
                    Fail($"{where}: ready left the conversation out, but the user was removed from it only after ready");
                }
            }

            long to;
            if (span.EndedByLeft)
            {
                to = span.Received.LastOrDefault();
                if (span.Left is { } left)
                {
                    var must = messages.Where(m => m.FirstAck < left.Start).Select(m => m.Seq).DefaultIfEmpty(0).Max();
                    to = Math.Max(to, must);
                    foreach (var late in span.Received.Where(s => bySeq.TryGetValue(s, out var m) && m.FirstSend > left.End))
                    {
                        Fail($"{where}: received seq {late}, sent after the removal had answered");
                    }
                }
            }
            else if (socket.CloseStart is null)
            {
                to = lastSeqs[span.Conversation];
            }
            else if (!socket.Aborted)
            {
                var must = messages.Where(m => m.FirstAck < socket.CloseStart).Select(m => m.Seq).DefaultIfEmpty(0).Max();
                to = Math.Max(span.Received.LastOrDefault(), must);
            }
            else
            {
                to = span.Received.LastOrDefault();
            }

            var missing = Range(from, to).Where(s => !held.Contains(s)).ToList();
            if (missing.Count > 0)
            {
                Fail($"{where}: never received seqs {string.Join(",", missing.Take(10))} (received {string.Join(",", span.Received)}; own {string.Join(",", own.Order())})");
            }
        }

        private void CheckCatchup(Socket socket, string name)
        {
            foreach (var entry in socket.Client.Ready.GetProperty("conversations").EnumerateArray())
            {
                var id = entry.Long("conversationId");
                if (!_byConversation.TryGetValue(id, out var messages))
                {
                    continue;
                }
                var replayed = socket.Client.Catchup.Where(m => m.Long("conversationId") == id).Select(m => m.Long("seq")).ToList();
                var lastSeq = entry.Long("lastSeq");
                var hasMore = entry.GetProperty("hasMore").GetBoolean();
                var where = $"{name}: catch-up of conversation {id} (lastSeq {lastSeq}, hasMore {hasMore})";
                if (!socket.WithCatchup)
                {
                    if (replayed.Count > 0)
                    {
                        Fail($"{where}: replayed {replayed.Count} messages without catch-up");
                    }
                    continue;
                }
                if (!replayed.Zip(replayed.Skip(1)).All(p => p.First < p.Second) || replayed.Any(s => s > lastSeq))
                {
                    Fail($"{where}: seqs {string.Join(",", replayed)}");
                }
                if (replayed.Count > CatchupLimit || (hasMore && replayed.Count < CatchupLimit))
                {
                    Fail($"{where}: {replayed.Count} messages for a cap of {CatchupLimit}");
                }
                // Between the first message replayed and lastSeq, only deleted messages may be left out (deletion is final).
                if (replayed.Count > 0)
                {
                    var end = hasMore ? replayed[^1] : lastSeq;
                    var skipped = Range(replayed[0], end).Where(s => !replayed.Contains(s) && messages.Any(m => m.Seq == s && !m.IsDeleted)).ToList();
                    if (skipped.Count > 0)
                    {
                        Fail($"{where}: left out seqs {string.Join(",", skipped)}, which are not deleted");
                    }
                }
            }
        }

        private async Task CheckPresenceAsync()
        {
            var detail = await _http[0].GetFromJsonAsync<JsonElement>($"/api/conversations/{_lobby.Id}");
            var status = detail.GetProperty("members").EnumerateArray().ToDictionary(m => m.Long("userId"), m => m.Str("presenceStatus"));
            var alive = Devices.Select(d => d.Socket).ToList();
            for (var u = 0; u < _users.Length; u++)
            {
                // The status most recently set among the user's open sockets; online when none of them set one.
                var set = _presences.Where(p => p.User == u && alive.Any(s => s.Id == p.Socket)).ToList();
                var latest = set.MaxBy(p => p.End);
                var allowed = latest is null ? ["online"] : set.Where(p => p.End >= latest.Start).Select(p => p.Status).ToHashSet();
                if (!allowed.Contains(status[_users[u].Id]!))
                {
                    Fail($"user {u} shows as {status[_users[u].Id]}; the status last set on an open socket was {string.Join(" or ", allowed)}");
                }
                foreach (var socket in alive.Where(s => s.User != u))
                {
                    var heard = socket.Frames.Select(f => f.Frame).LastOrDefault(f => f.Type() == "presence" && f.Long("senderId") == _users[u].Id);
                    if (heard.ValueKind != JsonValueKind.Undefined && heard.Str("presenceStatus") != status[_users[u].Id])
                    {
                        Fail($"socket {socket.Id} (user {socket.User}) last heard user {u} is {heard.Str("presenceStatus")}; they are {status[_users[u].Id]}");
                    }
                }
                // Protocol §11: a device of the user shows ready's status, then each status it sent and each frame about
                // its user it read, the latest winning (a frame is taken as read when the test read it: after a send it
                // may have crossed).
                foreach (var socket in alive.Where(s => s.User == u))
                {
                    var shown = new List<(long Ticket, string? Status)> { (socket.ReadyTicket, socket.Client.Ready.Str("presenceStatus")) };
                    shown.AddRange(_presences.Where(p => p.Socket == socket.Id).Select(p => (p.Start, (string?)p.Status)));
                    shown.AddRange(socket.Frames.Where(f => f.Frame.Type() == "presence" && f.Frame.Long("senderId") == _users[u].Id).Select(f => (f.Ticket, f.Frame.Str("presenceStatus"))));
                    var own = shown.MaxBy(e => e.Ticket).Status;
                    if (own != status[_users[u].Id])
                    {
                        Fail($"socket {socket.Id} of user {u} shows its user as {own}; they are {status[_users[u].Id]}");
                    }
                }
            }
        }

        private sealed class Position
        {
            public long ConversationId { get; init; }
            public long UserId { get; init; }
            public bool IsActive { get; init; }
            public int UnreadCount { get; init; }
            public long From { get; init; }
            public int Expected { get; init; }
        }

        private async Task CheckUnreadAndCatchupAsync()
        {
            var positions = await Sql.QueryAsync<Position>("""
                SELECT p.conversation_id AS ConversationId, p.user_id AS UserId, p.is_active AS IsActive, p.unread_count AS UnreadCount,
                       COALESCE(r.seq, p.joined_seq) AS From,
                       (SELECT count(*) FROM messages m
                        WHERE m.conversation_id = p.conversation_id AND m.seq > COALESCE(r.seq, p.joined_seq)
                          AND m.sender_id <> p.user_id AND NOT m.is_deleted)::int AS Expected
                FROM conversation_participants p LEFT JOIN messages r ON r.id = p.last_read_message_id
                WHERE p.conversation_id = ANY(@ids)
                """, new { ids = _conversations.Select(c => c.Id).ToArray() });
            for (var u = 0; u < _users.Length; u++)
            {
                // A fresh socket now that nothing moves: its ready and catch-up are exact.
                var socket = await ConnectAsync(u, catchup: true);
                var ready = socket.Client.Ready.GetProperty("conversations").EnumerateArray().ToDictionary(e => e.Long("conversationId"));
                foreach (var conversation in _conversations)
                {
                    var p = positions.SingleOrDefault(x => x.ConversationId == conversation.Id && x.UserId == _users[u].Id)
                        ?? new Position { ConversationId = conversation.Id, UserId = _users[u].Id };
                    var where = $"user {u} in {conversation.Kind} ({conversation.Id})";
                    if (p.IsActive != conversation.Active[u])
                    {
                        Fail($"{where}: is_active {p.IsActive}, but the changes made leave it {conversation.Active[u]}");
                    }
                    if (!p.IsActive)
                    {
                        if (ready.ContainsKey(conversation.Id))
                        {
                            Fail($"{where}: ready lists a conversation the user left");
                        }
                        continue;
                    }
                    if (p.UnreadCount != p.Expected)
                    {
                        Fail($"{where}: unread_count {p.UnreadCount}, by its definition {p.Expected} (read position seq {p.From})");
                    }
                    if (!ready.TryGetValue(conversation.Id, out var entry))
                    {
                        Fail($"{where}: ready does not list it");
                        continue;
                    }
                    if (entry.GetProperty("unreadCount").GetInt32() != p.Expected)
                    {
                        Fail($"{where}: ready says unreadCount {entry.GetProperty("unreadCount")}, by its definition {p.Expected}");
                    }
                    var expected = _byConversation[conversation.Id].Where(m => m.Seq > p.From && !m.IsDeleted).Select(m => m.Seq).ToList();
                    var replayed = socket.Client.Catchup.Where(m => m.Long("conversationId") == conversation.Id).Select(m => m.Long("seq")).ToList();
                    if (!replayed.SequenceEqual(expected.Take(CatchupLimit)) || entry.GetProperty("hasMore").GetBoolean() != expected.Count > CatchupLimit)
                    {
                        Fail($"{where}: catch-up replayed {string.Join(",", replayed)} (hasMore {entry.GetProperty("hasMore")}), the messages after the read position are {string.Join(",", expected)}");
                    }
                }
                await socket.Client.CloseAsync();
                await socket.Drained;
            }
        }

        private async Task CheckSyncFromZeroAsync()
        {
            foreach (var conversation in _conversations)
            {
                var member = conversation.Active.Where(p => p.Value).Select(p => p.Key).Order().FirstOrDefault(-1);
                if (member < 0)
                {
                    continue;
                }
                var socket = Devices.First(d => d.User == member).Socket;
                var from = socket.Count;
                await socket.Client.SendAsync(new { type = "sync", conversationId = conversation.Id, afterSeq = 0, limit = 500 });
                var (to, synced) = await socket.WaitForAsync(from, f => f.Type() == "synced" && f.Long("conversationId") == conversation.Id && f.Long("afterSeq") == 0, "the final sync");
                var frames = socket.Frames.Skip(from).Take(to - from).Select(f => f.Frame).Where(f => ConversationOf(f) == conversation.Id).ToList();
                var stored = _byConversation[conversation.Id];
                var where = $"sync from 0 of {conversation.Kind} ({conversation.Id})";
                if (synced.Long("lastSeq") != stored.Count || synced.GetProperty("hasMore").GetBoolean())
                {
                    Fail($"{where}: synced {synced}, {stored.Count} messages stored");
                }
                var shown = frames.Select(f => f.Type() switch
                {
                    "message" => $"{f.Long("seq")}:{f.Long("messageId")}:{f.Long("senderId")}:{f.Str("clientMessageId")}:{f.Str("content")}:{f.GetProperty("isEdited").GetBoolean()}",
                    "messageDeleted" => $"{f.Long("seq")}:{f.Long("messageId")}:{f.Long("senderId")}:deleted",
                    _ => $"unexpected {f}",
                }).ToList();
                var truth = stored.Select(m => m.IsDeleted
                    ? $"{m.Seq}:{m.Id}:{m.SenderId}:deleted"
                    : $"{m.Seq}:{m.Id}:{m.SenderId}:{m.ClientMessageId}:{m.Content}:{m.IsEdited}").ToList();
                foreach (var (got, want) in shown.Zip(truth).Where(p => p.First != p.Second).Take(5))
                {
                    Fail($"{where}: replayed {got}, stored {want}");
                }
                if (shown.Count != truth.Count)
                {
                    Fail($"{where}: {shown.Count} frames for {truth.Count} stored messages");
                }
                // Stored content is what its sender sent or last edited it to.
                foreach (var m in stored.Where(m => !m.IsDeleted))
                {
                    var sentAs = _sends.Where(s => _users[s.User].Id == m.SenderId && s.Key == m.ClientMessageId).Select(s => s.Content);
                    if (!sentAs.Concat(_edits.GetValueOrDefault(m.Id, [])).Contains(m.Content))
                    {
                        Fail($"{where}: seq {m.Seq} holds '{m.Content}', which nobody sent or edited it to");
                    }
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var device in Devices)
            {
                await device.Socket.Client.DisposeAsync();
            }
            foreach (var socket in _sockets)
            {
                await socket.Client.DisposeAsync();
            }
            foreach (var http in _http)
            {
                http.Dispose();
            }
        }
    }

    private static long ConversationOf(JsonElement frame) =>
        frame.TryGetProperty("conversationId", out var id) && id.ValueKind == JsonValueKind.Number ? id.GetInt64() : 0;

    /// <summary>The seqs after <paramref name="after"/> up to <paramref name="to"/>.</summary>
    private static IEnumerable<long> Range(long after, long to)
    {
        for (var s = after; s < to;)
        {
            yield return ++s;
        }
    }
}
