using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Chat.Core.Handlers;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

/// <summary>
/// Model-based check of the counters the data layer keeps incrementally. Four users with two devices each send,
/// resend, edit, delete and read at random in two groups and one direct conversation, and leave and come back, all
/// at once through the real gateway (WebSocket frames and the HTTP API). Afterwards every stored value is compared
/// with the value its definition gives, recomputed from the messages table and from what the clients were told:
/// each active member's unread count and read position, where they (re)joined, gap-free seq and changeSeq, each
/// message's content, and the conversation's preview, its sender and its last message time.
/// </summary>
/// <remarks>
/// The operations of each device come from a fixed seed; their interleaving does not, and every check holds for
/// any interleaving, so a failure is a bug whatever the timing was. The seed is in the test's name and in every
/// failure message. A user's membership changes wait for that user's other operations (and hold them off), so
/// that what each operation must do is known exactly; everything else runs concurrently. MODEL_OPS sets the
/// operations per device (45 by default, about a second per seed; 300 for a longer soak).
/// </remarks>
public sealed class UnreadModelTests : GatewayTest
{
    private const int Users = 4;
    private const int DevicesPerUser = 2;
    private static readonly int OpsPerDevice = int.TryParse(Environment.GetEnvironmentVariable("MODEL_OPS"), out var ops) ? ops : 45;

    protected override Dictionary<string, string?> Settings => new()
    {
        ["Chat:Limits:MessageRatePerSecond"] = "100000",
        ["Chat:Limits:MessageBurst"] = "100000",
    };

    private sealed record Sent(long Id, long ConversationId, long Seq, long SenderId, string ClientMessageId, string Content);

    private sealed record Change(long MessageId, bool Deleted, string? Content);

    private sealed class Member
    {
        public bool Active = true;
        /// <summary>Highest seq acknowledged to anyone before the latest (re)join was asked for: joined_seq is at least this.</summary>
        public long JoinedAtLeast;
        /// <summary>Ticket when the latest (re)join answered: any message whose send started later has a seq above joined_seq.</summary>
        public long JoinedTicket;
        /// <summary>Messages read (by seq) since the latest (re)join; the position is the highest of those after joined_seq.</summary>
        public readonly List<Sent> Reads = [];
    }

    private sealed class Conversation
    {
        public required long Id;
        public required bool IsGroup;
        public required int[] Members;
        public readonly Lock Lock = new();
        public readonly List<(Sent Message, long StartTicket)> Messages = [];
        public readonly Dictionary<int, Member> State = [];
        public readonly Dictionary<long, HashSet<Change>> Changes = [];
        public readonly HashSet<long> Deleted = [];
    }

    private sealed class UserSlot
    {
        public required TestUser Who;
        public required HttpClient Http;
        /// <summary>Taken by a membership change, before it takes every permit: one exclusive taker at a time.</summary>
        public readonly SemaphoreSlim Exclusive = new(1, 1);
        /// <summary>One per device; an operation holds one, a membership change holds all.</summary>
        public readonly SemaphoreSlim Permits = new(DevicesPerUser, DevicesPerUser);
    }

    private long _ticket;
    private long NextTicket() => Interlocked.Increment(ref _ticket);

    [TestCase(11)]
    [TestCase(22)]
    [TestCase(33)]
    public async Task Random_concurrent_operations_keep_unread_counts_seqs_changes_and_previews_exact(int seed)
    {
        var users = new UserSlot[Users];
        for (var u = 0; u < Users; u++)
        {
            var who = await Gateway.CreateUserAsync($"m{u}");
            users[u] = new UserSlot { Who = who, Http = Gateway.CreateHttpClient(who.ExternalId) };
        }
        try
        {
            var conversations = new[]
            {
                await CreateAsync(users, 0, [1, 2, 3], isGroup: true),
                await CreateAsync(users, 0, [1, 2], isGroup: true),
                await CreateAsync(users, 0, [1], isGroup: false),
                await CreateAsync(users, 2, [3], isGroup: false),
            };
            var devices = new List<(int User, int Device, ChatTestClient Client)>();
            for (var u = 0; u < Users; u++)
            {
                for (var d = 0; d < DevicesPerUser; d++)
                {
                    devices.Add((u, d, await ConnectAsync(users[u].Who)));
                }
            }

            await Task.WhenAll(devices.Select(device => Task.Run(() =>
                RunDeviceAsync(seed, users, conversations, device.User, device.Device, device.Client))));

            await CheckAsync(seed, users, conversations);
        }
        finally
        {
            foreach (var user in users)
            {
                user.Http.Dispose();
            }
        }
    }

    private async Task<Conversation> CreateAsync(UserSlot[] users, int creator, int[] others, bool isGroup)
    {
        var response = await users[creator].Http.PostAsJsonAsync("/api/conversations",
            new { title = "model", isGroup, memberExternalIds = others.Select(o => users[o].Who.ExternalId).ToArray() });
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        var conversation = new Conversation { Id = body.Long("conversationId"), IsGroup = isGroup, Members = [creator, .. others] };
        foreach (var member in conversation.Members)
        {
            conversation.State[member] = new Member();
        }
        return conversation;
    }

    private async Task RunDeviceAsync(int seed, UserSlot[] users, Conversation[] conversations, int user, int device, ChatTestClient client)
    {
        var random = new Random(seed * 1000 + user * 10 + device);
        var mine = new List<Sent>();
        var counter = 0;
        string Content(string kind) => random.Next(8) == 0
            ? $"{kind}-{user}.{device}.{++counter}-" + new string('x', 120) + "\U0001F600"
            : $"{kind}-{user}.{device}.{++counter}";

        for (var op = 0; op < OpsPerDevice; op++)
        {
            var candidates = conversations.Where(c => c.Members.Contains(user)).ToArray();
            var conversation = candidates[random.Next(candidates.Length)];
            var roll = random.Next(100);
            if (device == 0 && roll < 6)
            {
                await ChangeMembershipAsync(users, conversation, user);
                continue;
            }

            await users[user].Permits.WaitAsync();
            try
            {
                bool active;
                lock (conversation.Lock)
                {
                    active = conversation.State[user].Active;
                }
                if (roll < 45)
                {
                    await SendAsync(client, conversation, user, mine, Content("m"), active);
                }
                else if (roll < 50 && mine.Count > 0)
                {
                    await ResendAsync(client, conversations[random.Next(conversations.Length)], mine[random.Next(mine.Count)]);
                }
                else if (roll < 65 && active)
                {
                    var own = mine.Where(m => m.ConversationId == conversation.Id).ToList();
                    if (own.Count > 0)
                    {
                        var target = own[random.Next(own.Count)];
                        await EditAsync(client, conversation, target, random.Next(6) == 0 ? LastEditedContent(conversation, target) ?? Content("e") : Content("e"));
                    }
                }
                else if (roll < 75 && active)
                {
                    var own = mine.Where(m => m.ConversationId == conversation.Id).ToList();
                    if (own.Count > 0)
                    {
                        // Newest messages most often: deleting the latest moves the preview.
                        var target = own[Math.Max(0, own.Count - 1 - random.Next(Math.Min(own.Count, 4)))];
                        await DeleteAsync(client, conversation, target);
                    }
                }
                else
                {
                    Sent? target;
                    lock (conversation.Lock)
                    {
                        var all = conversation.Messages;
                        target = all.Count == 0 ? null
                            : random.Next(2) == 0 ? all.MaxBy(m => m.Message.Seq).Message
                            : all[random.Next(all.Count)].Message;
                    }
                    if (target is not null)
                    {
                        await ReadAsync(client, conversation, user, target, active);
                    }
                }
            }
            finally
            {
                users[user].Permits.Release();
            }
        }
    }

    private static string? LastEditedContent(Conversation conversation, Sent message)
    {
        lock (conversation.Lock)
        {
            return conversation.Changes.OrderBy(p => p.Key).SelectMany(p => p.Value)
                .Where(c => c.MessageId == message.Id && !c.Deleted)
                .Select(c => c.Content).LastOrDefault();
        }
    }

    private async Task SendAsync(ChatTestClient client, Conversation conversation, int user, List<Sent> mine, string content, bool active)
    {
        var key = Guid.NewGuid().ToString("N");
        var started = NextTicket();
        await client.SendAsync(new { type = "message", conversationId = conversation.Id, clientMessageId = key, content });
        var answer = await client.NextAsync(f => f.Type() is "ack" or "error" && f.Str("clientMessageId") == key);
        if (!active)
        {
            Assert.That(answer.Str("code"), Is.EqualTo("access_denied"), "a message to a conversation the sender left is refused");
            return;
        }
        Assert.That(answer.Type(), Is.EqualTo("ack"), $"a member's message is stored: {answer}");
        var sent = new Sent(answer.Long("messageId"), conversation.Id, answer.Long("seq"), client.UserId, key, content);
        mine.Add(sent);
        lock (conversation.Lock)
        {
            conversation.Messages.Add((sent, started));
        }
    }

    private static async Task ResendAsync(ChatTestClient client, Conversation conversation, Sent original)
    {
        // The key is the sender's, whatever conversation the repeat names: the original's ack comes back.
        await client.SendAsync(new { type = "message", conversationId = conversation.Id, clientMessageId = original.ClientMessageId, content = "repeat" });
        var answer = await client.NextAsync(f => f.Type() is "ack" or "error" && f.Str("clientMessageId") == original.ClientMessageId);
        Assert.That(answer.Type(), Is.EqualTo("ack"), $"a resend is answered with the original ack: {answer}");
        Assert.That((answer.Long("messageId"), answer.Long("conversationId"), answer.Long("seq")),
            Is.EqualTo((original.Id, original.ConversationId, original.Seq)), "a resend gets the original's id, conversation and seq");
    }

    private static async Task EditAsync(ChatTestClient client, Conversation conversation, Sent target, string content)
    {
        await client.SendAsync(new { type = "edit", conversationId = conversation.Id, messageId = target.Id, content });
        var answer = await client.NextAsync(f =>
            (f.Type() == "messageEdited" && f.Long("messageId") == target.Id && f.Str("content") == content)
            || (f.Type() == "error" && f.Str("frameType") == "edit" && f.Long("messageId") == target.Id));
        if (answer.Type() == "error")
        {
            Assert.That(answer.Str("code"), Is.EqualTo("not_found"), "only a deleted message of one's own cannot be edited");
            lock (conversation.Lock)
            {
                Assert.That(conversation.Deleted, Does.Contain(target.Id), "an edit is refused only for a message that was deleted");
            }
            return;
        }
        Record(conversation, answer.Long("changeSeq"), new Change(target.Id, false, content));
    }

    private static async Task DeleteAsync(ChatTestClient client, Conversation conversation, Sent target)
    {
        await client.SendAsync(new { type = "delete", conversationId = conversation.Id, messageId = target.Id });
        var answer = await client.NextAsync(f =>
            (f.Type() == "messageDeleted" && f.Long("messageId") == target.Id)
            || (f.Type() == "error" && f.Str("frameType") == "delete" && f.Long("messageId") == target.Id));
        Assert.That(answer.Type(), Is.EqualTo("messageDeleted"), $"deleting one's own message succeeds, again too: {answer}");
        Record(conversation, answer.Long("changeSeq"), new Change(target.Id, true, null));
        lock (conversation.Lock)
        {
            conversation.Deleted.Add(target.Id);
        }
    }

    private static void Record(Conversation conversation, long changeSeq, Change change)
    {
        lock (conversation.Lock)
        {
            if (!conversation.Changes.TryGetValue(changeSeq, out var changes))
            {
                conversation.Changes[changeSeq] = changes = [];
            }
            changes.Add(change);
        }
    }

    private static async Task ReadAsync(ChatTestClient client, Conversation conversation, int user, Sent target, bool active)
    {
        await client.SendAsync(new { type = "read", conversationId = conversation.Id, messageId = target.Id });
        // Frames of one connection are handled in order, and a sync is always answered: once it is, the read was.
        await client.SendAsync(new { type = "sync", conversationId = conversation.Id, afterSeq = long.MaxValue / 2, limit = 1 });
        await client.NextAsync(f => f.Type() is "synced" or "error" && f.Str("frameType") is null or "sync" && f.Long("conversationId") == conversation.Id);
        if (active)
        {
            lock (conversation.Lock)
            {
                conversation.State[user].Reads.Add(target);
            }
        }
    }

    private async Task ChangeMembershipAsync(UserSlot[] users, Conversation conversation, int user)
    {
        // User 0 stays in the groups, so that a group always has a member to bring the others back.
        if (conversation.IsGroup && user == 0)
        {
            return;
        }
        // Reopening a direct conversation brings back both of its members: hold both, in user order.
        var involved = (conversation.IsGroup ? [user] : conversation.Members).Order().ToArray();
        foreach (var u in involved)
        {
            await users[u].Exclusive.WaitAsync();
            for (var i = 0; i < DevicesPerUser; i++)
            {
                await users[u].Permits.WaitAsync();
            }
        }
        try
        {
            bool active;
            lock (conversation.Lock)
            {
                active = conversation.State[user].Active;
            }
            if (active)
            {
                var response = await users[user].Http.DeleteAsync($"/api/conversations/{conversation.Id}/members/{Uri.EscapeDataString(users[user].Who.ExternalId)}");
                Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent), "an active member leaves");
                lock (conversation.Lock)
                {
                    conversation.State[user].Active = false;
                }
                return;
            }

            var rejoining = involved.Where(u => { lock (conversation.Lock) { return !conversation.State[u].Active; } }).ToArray();
            long before;
            lock (conversation.Lock)
            {
                before = conversation.Messages.Count == 0 ? 0 : conversation.Messages.Max(m => m.Message.Seq);
            }
            HttpResponseMessage answer;
            if (conversation.IsGroup)
            {
                answer = await users[0].Http.PostAsJsonAsync($"/api/conversations/{conversation.Id}/members", new { externalId = users[user].Who.ExternalId });
                Assert.That(answer.StatusCode, Is.EqualTo(HttpStatusCode.Created), "a member brings back one who left");
            }
            else
            {
                var other = conversation.Members.Single(m => m != user);
                answer = await users[user].Http.PostAsJsonAsync("/api/conversations",
                    new { isGroup = false, memberExternalIds = new[] { users[other].Who.ExternalId } });
                Assert.That(answer.StatusCode, Is.EqualTo(HttpStatusCode.OK), "reopening a direct conversation answers the existing one");
                Assert.That((await answer.Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId"), Is.EqualTo(conversation.Id));
            }
            var ticket = NextTicket();
            lock (conversation.Lock)
            {
                foreach (var u in rejoining)
                {
                    conversation.State[u] = new Member { JoinedAtLeast = before, JoinedTicket = ticket };
                }
            }
        }
        finally
        {
            foreach (var u in involved.Reverse())
            {
                users[u].Permits.Release(DevicesPerUser);
                users[u].Exclusive.Release();
            }
        }
    }

    private sealed class StoredMessage
    {
        public long Id { get; init; }
        public long ConversationId { get; init; }
        public long Seq { get; init; }
        public long SenderId { get; init; }
        public required string Content { get; init; }
        public bool IsDeleted { get; init; }
        public long? ChangeSeq { get; init; }
        public DateTime CreatedAt { get; init; }
        public required string ClientMessageId { get; init; }
    }

    private sealed class StoredConversation
    {
        public long Id { get; init; }
        public long LastSeq { get; init; }
        public long LastChangeSeq { get; init; }
        public string? LastMessagePreview { get; init; }
        public long? LastMessageSenderId { get; init; }
        public DateTime? LastMessageAt { get; init; }
    }

    private sealed class StoredParticipant
    {
        public long ConversationId { get; init; }
        public long UserId { get; init; }
        public bool IsActive { get; init; }
        public int UnreadCount { get; init; }
        public long? ReadSeq { get; init; }
        public long JoinedSeq { get; init; }
        public DateTime JoinedAt { get; init; }
        /// <summary>The definition: messages after the read position (or where they joined) from others, deleted ones excluded.</summary>
        public int Expected { get; init; }
    }

    private async Task CheckAsync(int seed, UserSlot[] users, Conversation[] conversations)
    {
        var ids = conversations.Select(c => c.Id).ToArray();
        var messages = await Sql.QueryAsync<StoredMessage>("""
            SELECT id AS Id, conversation_id AS ConversationId, seq AS Seq, sender_id AS SenderId, content AS Content,
                   is_deleted AS IsDeleted, change_seq AS ChangeSeq, created_at AS CreatedAt, client_message_id AS ClientMessageId
            FROM messages WHERE conversation_id = ANY(@ids) ORDER BY conversation_id, seq
            """, new { ids });
        var stored = (await Sql.QueryAsync<StoredConversation>("""
            SELECT id AS Id, last_seq AS LastSeq, last_change_seq AS LastChangeSeq, last_message_preview AS LastMessagePreview,
                   last_message_sender_id AS LastMessageSenderId, last_message_at AS LastMessageAt
            FROM conversations WHERE id = ANY(@ids)
            """, new { ids })).ToDictionary(c => c.Id);
        var participants = await Sql.QueryAsync<StoredParticipant>("""
            SELECT p.conversation_id AS ConversationId, p.user_id AS UserId, p.is_active AS IsActive, p.unread_count AS UnreadCount,
                   r.seq AS ReadSeq, p.joined_seq AS JoinedSeq, p.joined_at AS JoinedAt,
                   (SELECT count(*) FROM messages m
                    WHERE m.conversation_id = p.conversation_id AND m.seq > COALESCE(r.seq, p.joined_seq)
                      AND m.sender_id <> p.user_id AND NOT m.is_deleted)::int AS Expected
            FROM conversation_participants p LEFT JOIN messages r ON r.id = p.last_read_message_id
            WHERE p.conversation_id = ANY(@ids)
            """, new { ids });

        var where = $"(seed {seed})";
        var failures = new List<string>();
        void Check(bool ok, string what)
        {
            if (!ok)
            {
                failures.Add(what);
            }
        }

        foreach (var conversation in conversations)
        {
            var c = stored[conversation.Id];
            var rows = messages.Where(m => m.ConversationId == conversation.Id).ToList();
            var name = $"conversation {conversation.Id} ({(conversation.IsGroup ? "group" : "direct")})";

            // seq: 1, 2, 3, ... without gaps, last_seq the last; a higher seq has a higher id.
            Check(rows.Select(m => m.Seq).SequenceEqual(Enumerable.Range(1, rows.Count).Select(i => (long)i)),
                $"{name}: seqs are not 1..{rows.Count}: {string.Join(",", rows.Select(m => m.Seq))}");
            Check(c.LastSeq == rows.Count, $"{name}: last_seq {c.LastSeq}, {rows.Count} messages");
            Check(rows.Zip(rows.Skip(1)).All(p => p.First.Id < p.Second.Id), $"{name}: ids do not follow seq");

            // Every acknowledged message is stored once, as acknowledged.
            List<Sent> acked;
            Dictionary<long, HashSet<Change>> changes;
            lock (conversation.Lock)
            {
                acked = conversation.Messages.Select(m => m.Message).ToList();
                changes = conversation.Changes.ToDictionary(p => p.Key, p => p.Value.ToHashSet());
            }
            Check(acked.Count == rows.Count, $"{name}: {acked.Count} messages acknowledged, {rows.Count} stored");
            var byId = rows.ToDictionary(m => m.Id);
            foreach (var sent in acked)
            {
                Check(byId.TryGetValue(sent.Id, out var row) && row.Seq == sent.Seq && row.SenderId == sent.SenderId && row.ClientMessageId == sent.ClientMessageId,
                    $"{name}: message {sent.Id} (seq {sent.Seq}) is not stored as acknowledged");
            }

            // changeSeq: every change answered exactly one position, 1..last_change_seq, none taken twice.
            Check(changes.Keys.Order().SequenceEqual(Enumerable.Range(1, (int)c.LastChangeSeq).Select(i => (long)i)),
                $"{name}: changes announced at {string.Join(",", changes.Keys.Order())}, last_change_seq {c.LastChangeSeq}");
            foreach (var (changeSeq, atPosition) in changes.Where(p => p.Value.Count > 1))
            {
                failures.Add($"{name}: changeSeq {changeSeq} announced for {atPosition.Count} different changes");
            }
            foreach (var row in rows)
            {
                var own = changes.Where(p => p.Value.Any(x => x.MessageId == row.Id)).OrderBy(p => p.Key).ToList();
                var latest = own.Count == 0 ? null : own[^1].Value.First(x => x.MessageId == row.Id);
                Check(row.ChangeSeq == (own.Count == 0 ? null : own[^1].Key),
                    $"{name}: message seq {row.Seq} has change_seq {row.ChangeSeq}, its latest announced change is {(own.Count == 0 ? "none" : own[^1].Key)}");
                Check(row.IsDeleted == own.Any(p => p.Value.Any(x => x.MessageId == row.Id && x.Deleted)),
                    $"{name}: message seq {row.Seq} is_deleted {row.IsDeleted} against its announced changes");
                var original = acked.FirstOrDefault(a => a.Id == row.Id)?.Content;
                var expectedContent = own.Select(p => p.Value.First(x => x.MessageId == row.Id)).LastOrDefault(x => !x.Deleted)?.Content ?? original;
                Check(row.Content == expectedContent, $"{name}: message seq {row.Seq} holds '{row.Content}', its last edit said '{expectedContent}'");
            }

            // The preview: the last message not deleted, its sender; the time of the last message, a deleted one included.
            var visible = rows.LastOrDefault(m => !m.IsDeleted);
            Check(c.LastMessagePreview == (visible is null ? null : MessagePreview.Of(visible.Content)),
                $"{name}: preview '{c.LastMessagePreview}', the last visible message (seq {visible?.Seq}) says '{(visible is null ? null : MessagePreview.Of(visible.Content))}'");
            Check(c.LastMessageSenderId == visible?.SenderId,
                $"{name}: preview sender {c.LastMessageSenderId}, the last visible message's sender is {visible?.SenderId}");
            Check(c.LastMessageAt == rows.LastOrDefault()?.CreatedAt,
                $"{name}: last_message_at {c.LastMessageAt:O}, the last message was stored at {rows.LastOrDefault()?.CreatedAt:O}");

            // Members: active as the model says; joined where they joined; read where they read; unread as defined.
            foreach (var member in conversation.Members)
            {
                var user = users[member].Who;
                var p = participants.Single(x => x.ConversationId == conversation.Id && x.UserId == user.Id);
                Member state;
                List<(Sent Message, long StartTicket)> all;
                lock (conversation.Lock)
                {
                    state = conversation.State[member];
                    all = conversation.Messages.ToList();
                }
                var who = $"{name}, user {member} ({user.Id})";
                Check(p.IsActive == state.Active, $"{who}: is_active {p.IsActive}, the model says {state.Active}");
                if (!p.IsActive)
                {
                    continue;
                }
                var sentAfterJoin = all.Where(m => m.StartTicket > state.JoinedTicket).Select(m => m.Message.Seq).DefaultIfEmpty(long.MaxValue).Min();
                Check(p.JoinedSeq >= state.JoinedAtLeast && p.JoinedSeq < sentAfterJoin,
                    $"{who}: joined_seq {p.JoinedSeq}, but seq {state.JoinedAtLeast} was acknowledged before the join and seq {sentAfterJoin} sent after it");
                var before = rows.Where(m => m.CreatedAt < p.JoinedAt).Select(m => m.Seq).DefaultIfEmpty(0).Max();
                Check(p.JoinedSeq == before,
                    $"{who}: joined_seq {p.JoinedSeq}, but joined_at {p.JoinedAt:O} follows the messages up to seq {before}");
                List<Sent> reads;
                lock (conversation.Lock)
                {
                    reads = state.Reads.ToList();
                }
                var expectedRead = reads.Where(r => r.Seq > p.JoinedSeq).Select(r => (long?)r.Seq).Max();
                Check(p.ReadSeq == expectedRead, $"{who}: read position seq {p.ReadSeq}, the reads since joining reach {expectedRead}");
                Check(p.UnreadCount == p.Expected,
                    $"{who}: unread_count {p.UnreadCount}, by its definition {p.Expected} (read seq {p.ReadSeq}, joined seq {p.JoinedSeq})");
            }
        }

        // What clients are told: the HTTP list and a new connection's ready agree with the tables.
        foreach (var (slot, index) in users.Select((s, i) => (s, i)))
        {
            var list = await slot.Http.GetFromJsonAsync<JsonElement>("/api/conversations?limit=100");
            foreach (var item in list.GetProperty("items").EnumerateArray().Where(i => ids.Contains(i.Long("conversationId"))))
            {
                var id = item.Long("conversationId");
                var p = participants.Single(x => x.ConversationId == id && x.UserId == slot.Who.Id);
                var c = stored[id];
                Check(item.GetProperty("unreadCount").GetInt32() == p.Expected, $"GET /api/conversations for user {index}: conversation {id} unreadCount {item.GetProperty("unreadCount")}, expected {p.Expected}");
                Check(item.Str("lastMessagePreview") == c.LastMessagePreview, $"GET /api/conversations for user {index}: conversation {id} preview differs from the table");
            }
        }

        TestContext.Out.WriteLine($"{where}: " + string.Join("; ", conversations.Select(c =>
            $"conversation {c.Id}: {messages.Count(m => m.ConversationId == c.Id)} messages, {messages.Count(m => m.ConversationId == c.Id && m.IsDeleted)} deleted, " +
            $"{stored[c.Id].LastChangeSeq} changes, unread {string.Join("/", participants.Where(p => p.ConversationId == c.Id && p.IsActive).Select(p => p.UnreadCount))}, " +
            $"joined {string.Join("/", participants.Where(p => p.ConversationId == c.Id).Select(p => p.JoinedSeq))}")));
        Assert.That(failures, Is.Empty, $"{where}: {failures.Count} stored values differ from their definitions:\n" + string.Join("\n", failures));
    }
}
