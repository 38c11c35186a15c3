using System.Globalization;
using System.Text.Json;
using Chat.Cli.Client;
using Chat.Core.Auth;
using Chat.Core.Options;

namespace Chat.Cli.Smoke;

/// <summary>
/// The checks of <c>chat smoke</c> against one gateway, with users made for this run: Alice and Bob share a
/// conversation that Alice creates, Carol is added to it while connected, Dave is an outsider.
/// </summary>
internal sealed class SmokeRun : IAsyncDisposable
{
    public const string Create = "create a conversation over HTTP";
    public const string Connect = "connect over WebSocket";
    public const string Message = "message → ack → delivery";
    public const string Retry = "idempotent retry";
    public const string Typing = "typing";
    public const string Read = "read receipt and unread count";
    public const string Presence = "presence online/away/offline";
    public const string Catchup = "catch-up after a reconnect";
    public const string Sync = "sync from a position";
    public const string EditDelete = "edit and delete";
    public const string MemberAdded = "member added live";
    public const string NonMember = "non-member refused";

    private readonly string _run = Guid.NewGuid().ToString("N")[..10];
    private readonly SmokeUser _alice;
    private readonly SmokeUser _bob;
    private readonly SmokeUser _carol;
    private readonly SmokeUser _dave;
    private readonly List<ChatSocket> _sockets = [];
    private ChatSocket _a = null!;
    private ChatSocket _b = null!;
    private long _conversationId;
    private int _counter;
    private Sent _first = null!;
    private Sent _second = null!;
    private Sent _third = null!;

    public SmokeRun(Uri baseUrl, ChatAuthOptions signing)
    {
        SmokeUser User(string name)
        {
            // Fresh external ids on every run, so that a run never meets the conversations or state of another.
            var externalId = $"smoke-{_run}-{name.ToLowerInvariant()}";
            var token = ChatTokens.Issue(signing, externalId, $"{name} (smoke)", null, TimeSpan.FromHours(1));
            return new SmokeUser(externalId, name, new GatewayTarget(baseUrl, token));
        }
        _alice = User("Alice");
        _bob = User("Bob");
        _carol = User("Carol");
        _dave = User("Dave");
    }

    /// <summary>What the running check waits for, to name it in a timeout.</summary>
    public string Step { get; private set; } = "the first step";

    public IReadOnlyList<SmokeCheck> Checks =>
    [
        new(Create, CreateConversationAsync),
        new(Connect, ConnectAsync, Create),
        new(Message, MessageAsync, Connect),
        new(Retry, RetryAsync, Message),
        new(Typing, TypingAsync, Connect),
        new(Read, ReadAsync, Retry),
        new(Presence, PresenceAsync, Connect),
        new(Catchup, CatchupAsync, Read, Presence),
        new(Sync, SyncAsync, Catchup),
        new(EditDelete, EditAndDeleteAsync, Catchup),
        new(MemberAdded, MemberAddedAsync, Connect),
        new(NonMember, NonMemberAsync, Create),
    ];

    private async Task CreateConversationAsync(CancellationToken cancellation)
    {
        var conversation = await HttpAsync(_alice, HttpMethod.Post, "api/conversations",
            new { title = $"smoke {_run}", isGroup = true, memberExternalIds = new[] { _bob.ExternalId } }, 201, cancellation);
        _conversationId = Field(conversation, "conversationId", "the created conversation");
        var members = conversation.Items("members").Select(m => m.Str("externalId")).ToList();
        Require(members.Contains(_alice.ExternalId) && members.Contains(_bob.ExternalId),
            $"the created conversation's members are [{string.Join(", ", members)}], expected the caller {_alice.ExternalId} and {_bob.ExternalId}");
        Require(conversation.Bool("isGroup") == true, "the conversation asked for with isGroup: true is not a group");
    }

    private async Task ConnectAsync(CancellationToken cancellation)
    {
        _a = (await ConnectAsync(_alice, cancellation)).Socket;
        var (socket, _, ready) = await ConnectAsync(_bob, cancellation);
        _b = socket;
        var entry = ready.Items("conversations").FirstOrDefault(c => c.Long("conversationId") == _conversationId);
        Require(entry.ValueKind == JsonValueKind.Object, $"Bob's ready does not list conversation {_conversationId}");
        Require(entry.Long("lastSeq") == 0, $"ready says lastSeq {entry.Long("lastSeq")} for a conversation without messages");
    }

    private async Task MessageAsync(CancellationToken cancellation)
    {
        _first = await SendAsync(_a, "hello from chat smoke", cancellation);
        Require(_first.Seq == 1, $"the first message of a new conversation got seq {_first.Seq}, expected 1");
        var copy = await ExpectAsync(_b, "Alice's message", IsMessage(_first), cancellation);
        Require(copy.Long("messageId") == _first.MessageId && copy.Long("seq") == _first.Seq,
            $"Bob's copy has messageId {copy.Long("messageId")} seq {copy.Long("seq")}, the ack said {_first.MessageId} seq {_first.Seq}");
        Require(copy.Str("content") == _first.Content, $"Bob's copy reads '{copy.Str("content")}', Alice sent '{_first.Content}'");
        Require(copy.Long("senderId") == _alice.UserId, $"Bob's copy names sender {copy.Long("senderId")}, expected Alice ({_alice.UserId})");
        Require(copy.Bool("isCatchup") == false, "a live delivery is marked isCatchup: true");
    }

    private async Task RetryAsync(CancellationToken cancellation)
    {
        var again = await SendAsync(_a, _first.Content, cancellation, _first.ClientMessageId);
        Require(again.MessageId == _first.MessageId && again.Seq == _first.Seq && again.Timestamp == _first.Timestamp,
            $"the retry was acknowledged as messageId {again.MessageId} seq {again.Seq} at {again.Timestamp}, the original as {_first.MessageId} seq {_first.Seq} at {_first.Timestamp}");

        // A marker after the retry: whatever the gateway sent Bob for the retry arrives before it, in seq order.
        _second = await SendAsync(_a, "second message", cancellation);
        Require(_second.Seq == _first.Seq + 1, $"the next message got seq {_second.Seq}, expected {_first.Seq + 1}: the retry took a seq");
        var before = new List<JsonElement>();
        await ExpectAsync(_b, "the message after the retry", IsMessage(_second), cancellation, before);
        Require(!before.Any(IsMessage(_first)), "Bob received the retried message a second time");
    }

    private async Task TypingAsync(CancellationToken cancellation)
    {
        foreach (var isTyping in new[] { true, false })
        {
            await _b.SendAsync(new { type = "typing", conversationId = _conversationId, isTyping }, cancellation);
            await ExpectAsync(_a, $"Bob's typing (isTyping: {isTyping.ToString().ToLowerInvariant()})",
                f => f.Type() == "typing" && f.Long("conversationId") == _conversationId && f.Long("senderId") == _bob.UserId && f.Bool("isTyping") == isTyping,
                cancellation);
        }
    }

    private async Task ReadAsync(CancellationToken cancellation)
    {
        // Bob's count is his alone (protocol §6.6): Alice's receipt has none, his other device's has it and its positions.
        await OnBobsOtherDeviceAsync(async (other, _) =>
        {
            await _b.SendAsync(new { type = "read", conversationId = _conversationId, messageId = _first.MessageId }, cancellation);
            Func<JsonElement, bool> isReceipt =
                f => f.Type() == "read" && f.Long("conversationId") == _conversationId && f.Long("senderId") == _bob.UserId && f.Long("messageId") == _first.MessageId;
            var seen = await ExpectAsync(_a, "Bob's read receipt", isReceipt, cancellation);
            if (seen.TryGetProperty("unreadCount", out var leaked))
            {
                throw new SmokeFailure($"Alice's copy of Bob's read receipt carries Bob's unreadCount ({leaked.GetRawText()})");
            }
            var own = await ExpectAsync(other, "Bob's read receipt", isReceipt, cancellation);
            Require(own.Long("unreadCount") == 1 && own.Long("lastSeq") == _second.Seq && own.Long("lastChangeSeq") == 0,
                $"the read receipt on Bob's other device says unreadCount {Show(own.Long("unreadCount"))} lastSeq {Show(own.Long("lastSeq"))} lastChangeSeq {Show(own.Long("lastChangeSeq"))}, expected 1, {_second.Seq} and 0");
        }, cancellation);

        var page = await HttpAsync(_bob, HttpMethod.Get, "api/conversations?limit=100", null, 200, cancellation);
        var entry = page.Items("items").FirstOrDefault(c => c.Long("conversationId") == _conversationId);
        Require(entry.ValueKind == JsonValueKind.Object, $"GET /api/conversations does not list conversation {_conversationId} for Bob");
        Require(entry.Long("unreadCount") == 1, $"Bob's unreadCount is {Show(entry.Long("unreadCount"))} after reading the first of two messages, expected 1");
    }

    private async Task PresenceAsync(CancellationToken cancellation)
    {
        await _b.SendAsync(new { type = "presence", presenceStatus = "away" }, cancellation);
        await ExpectPresenceAsync("away", cancellation);
        // A device that connects starts from the status its user set on another (protocol §11).
        await OnBobsOtherDeviceAsync((_, ready) =>
        {
            Require(ready.Str("presenceStatus") == "away",
                $"the ready of Bob's other device says presenceStatus {ready.Str("presenceStatus") ?? "(none)"}, expected away, as his first device set it");
            return Task.CompletedTask;
        }, cancellation);
        Step = "Bob's socket to close";
        await _b.CloseAsync(cancellation);
        await ExpectPresenceAsync("offline", cancellation);
        _b = (await ConnectAsync(_bob, cancellation)).Socket;
        await ExpectPresenceAsync("online", cancellation);
    }

    private async Task CatchupAsync(CancellationToken cancellation)
    {
        Step = "Bob's socket to close";
        await _b.CloseAsync(cancellation);
        await ExpectPresenceAsync("offline", cancellation);
        _third = await SendAsync(_a, "sent while Bob was away", cancellation);

        var (socket, catchup, ready) = await ConnectAsync(_bob, cancellation);
        _b = socket;
        var entry = ready.Items("conversations").FirstOrDefault(c => c.Long("conversationId") == _conversationId);
        var replayed = catchup.FirstOrDefault(IsMessage(_third));
        Require(replayed.ValueKind == JsonValueKind.Object,
            $"Bob's catch-up ({catchup.Count} messages) lacks the message sent while he was away (ready says hasMore: {Show(entry.Bool("hasMore"))})");
        Require(replayed.Bool("isCatchup") == true, "a catch-up message is marked isCatchup: false");
        Require(entry.Long("lastSeq") == _third.Seq, $"ready says lastSeq {Show(entry.Long("lastSeq"))}, expected {_third.Seq}");
        Require(entry.Long("unreadCount") == 2, $"ready says unreadCount {Show(entry.Long("unreadCount"))} with two unread messages after the read position, expected 2");
    }

    private async Task SyncAsync(CancellationToken cancellation)
    {
        // Two pages of one message each, from the first message on: the second page ends the conversation.
        foreach (var (after, expected, hasMore) in new[] { (_first, _second, true), (_second, _third, false) })
        {
            await _b.SendAsync(new { type = "sync", conversationId = _conversationId, afterSeq = after.Seq, limit = 1 }, cancellation);
            var before = new List<JsonElement>();
            var synced = await ExpectAsync(_b, $"synced after seq {after.Seq}",
                f => f.Type() == "synced" && f.Long("conversationId") == _conversationId, cancellation, before);
            var seqs = before.Where(f => f.Type() is "message" or "messageDeleted" && f.Long("conversationId") == _conversationId && f.Bool("isCatchup") != false)
                .Select(f => f.Long("seq")).ToList();
            Require(seqs.SequenceEqual([expected.Seq]), $"sync after seq {after.Seq} with limit 1 replayed seq [{string.Join(", ", seqs)}], expected [{expected.Seq}]");
            Require(synced.Long("lastSeq") == expected.Seq && synced.Bool("hasMore") == hasMore,
                $"synced says lastSeq {Show(synced.Long("lastSeq"))} hasMore {Show(synced.Bool("hasMore"))}, expected {expected.Seq} and {hasMore.ToString().ToLowerInvariant()}");
        }
    }

    private async Task EditAndDeleteAsync(CancellationToken cancellation)
    {
        const string edited = "edited by chat smoke";
        await _a.SendAsync(new { type = "edit", conversationId = _conversationId, messageId = _third.MessageId, content = edited }, cancellation);
        long? editChange = null;
        foreach (var socket in new[] { _a, _b })
        {
            var frame = await ExpectAsync(socket, "messageEdited", f => f.Type() == "messageEdited" && f.Long("messageId") == _third.MessageId, cancellation);
            Require(frame.Str("content") == edited && frame.Long("seq") == _third.Seq,
                $"{socket.Name}'s messageEdited has content '{frame.Str("content")}' seq {Show(frame.Long("seq"))}, expected '{edited}' seq {_third.Seq}");
            editChange = frame.Long("changeSeq");
        }

        await _a.SendAsync(new { type = "delete", conversationId = _conversationId, messageId = _second.MessageId }, cancellation);
        long? deleteChange = null;
        foreach (var socket in new[] { _a, _b })
        {
            var frame = await ExpectAsync(socket, "messageDeleted", f => f.Type() == "messageDeleted" && f.Long("messageId") == _second.MessageId, cancellation);
            Require(frame.Long("seq") == _second.Seq, $"{socket.Name}'s messageDeleted has seq {Show(frame.Long("seq"))}, expected {_second.Seq}");
            deleteChange = frame.Long("changeSeq");
        }
        Require(editChange is > 0 && deleteChange == editChange + 1,
            $"the edit and the delete carry changeSeq {Show(editChange)} and {Show(deleteChange)}, expected two consecutive positions");

        // A client that held the messages up to the third before both changes gets them replayed, in change order.
        await _b.SendAsync(new { type = "sync", conversationId = _conversationId, afterSeq = _third.Seq, afterChangeSeq = editChange - 1 }, cancellation);
        var replayed = new List<JsonElement>();
        var synced = await ExpectAsync(_b, "synced after the changes", f => f.Type() == "synced" && f.Long("conversationId") == _conversationId, cancellation, replayed);
        var changes = replayed.Where(f => f.Type() is "messageEdited" or "messageDeleted" && f.Long("conversationId") == _conversationId)
            .Select(f => $"{f.Type()} {f.Long("messageId")}").ToList();
        string[] expectedChanges = [$"messageEdited {_third.MessageId}", $"messageDeleted {_second.MessageId}"];
        Require(changes.SequenceEqual(expectedChanges),
            $"sync from the change before the edit replayed [{string.Join(", ", changes)}], expected [{string.Join(", ", expectedChanges)}]");
        Require(synced.Long("lastChangeSeq") == deleteChange, $"synced says lastChangeSeq {Show(synced.Long("lastChangeSeq"))}, expected {Show(deleteChange)}");

        var history = await HttpAsync(_bob, HttpMethod.Get, $"api/conversations/{_conversationId}/messages?limit=100", null, 200, cancellation);
        var items = history.Items("items").ToDictionary(m => m.Long("messageId") ?? 0);
        Require(items.TryGetValue(_third.MessageId, out var third) && third.Str("content") == edited && third.Bool("isEdited") == true && !third.IsNull("editedAt"),
            $"history shows the edited message as content '{third.Str("content")}', isEdited {Show(third.Bool("isEdited"))}, editedAt {third.Str("editedAt") ?? "null"}");
        Require(items.TryGetValue(_second.MessageId, out var second) && second.Bool("isDeleted") == true && second.IsNull("content"),
            $"history shows the deleted message as isDeleted {Show(second.Bool("isDeleted"))} with content '{second.Str("content")}', expected a tombstone");
    }

    private async Task MemberAddedAsync(CancellationToken cancellation)
    {
        var (carol, _, _) = await ConnectAsync(_carol, cancellation);
        await HttpAsync(_alice, HttpMethod.Post, $"api/conversations/{_conversationId}/members", new { externalId = _carol.ExternalId }, 201, cancellation);
        await ExpectAsync(_a, "the member frame for Carol", IsJoined(_carol), cancellation);

        var fourth = await SendAsync(_a, "welcome, Carol", cancellation);
        // The member frame and the next message may come in either order as far as this check is concerned.
        await ExpectEachAsync(carol, cancellation, ("her own member frame (joined)", IsJoined(_carol)), ("the next message, live", IsMessage(fourth)));
    }

    private async Task NonMemberAsync(CancellationToken cancellation)
    {
        await HttpAsync(_dave, HttpMethod.Get, $"api/conversations/{_conversationId}", null, 404, cancellation);
        await HttpAsync(_dave, HttpMethod.Get, $"api/conversations/{_conversationId}/messages", null, 404, cancellation);
        var (dave, _, _) = await ConnectAsync(_dave, cancellation);
        var key = NextKey();
        await dave.SendAsync(new { type = "message", conversationId = _conversationId, clientMessageId = key, content = "let me in" }, cancellation);
        var answer = await ExpectAsync(dave, "the answer to a non-member's message",
            f => f.Type() is "ack" or "error" && f.Str("clientMessageId") == key, cancellation);
        Require(answer.Type() == "error" && answer.Str("code") == "access_denied",
            answer.Type() == "ack" ? "a non-member's message was acknowledged" : $"a non-member's message got error {answer.Str("code")}, expected access_denied");
    }

    /// <summary>
    /// Runs <paramref name="use"/> with a second connection of Bob's, given its <c>ready</c>, and closes it after,
    /// whatever happens: left open, it would keep Bob online through the checks that close his first one.
    /// </summary>
    private async Task OnBobsOtherDeviceAsync(Func<ChatSocket, JsonElement, Task> use, CancellationToken cancellation)
    {
        var (other, _, ready) = await ConnectAsync(_bob, cancellation, "Bob's other device");
        try
        {
            await use(other, ready);
        }
        finally
        {
            _sockets.Remove(other);
            await other.DisposeAsync();
        }
    }

    /// <param name="name">The socket's name in what the run says; by default the user's.</param>
    private async Task<(ChatSocket Socket, List<JsonElement> Catchup, JsonElement Ready)> ConnectAsync(SmokeUser user, CancellationToken cancellation, string? name = null)
    {
        name ??= user.Name;
        Step = $"{name}'s WebSocket handshake";
        var socket = await ChatSocket.ConnectAsync(user.Target, catchup: true, name, cancellation);
        _sockets.Add(socket);
        var welcome = await ExpectAsync(socket, "welcome", _ => true, cancellation);
        Require(welcome.Type() == "welcome", $"{user.Name}'s first frame is {welcome.Type()}, expected welcome");
        Require(welcome.Str("externalId") == user.ExternalId, $"welcome names {welcome.Str("externalId")}, the token {user.ExternalId}");
        user.UserId = Field(welcome, "userId", "welcome");
        var catchup = new List<JsonElement>();
        while (true)
        {
            var frame = await ExpectAsync(socket, "ready", _ => true, cancellation);
            if (frame.Type() == "ready")
            {
                return (socket, catchup, frame);
            }
            Require(frame.Type() == "message", $"{frame.Type()} came between welcome and ready, where only catch-up messages may");
            catchup.Add(frame);
        }
    }

    private async Task<Sent> SendAsync(ChatSocket socket, string content, CancellationToken cancellation, string? clientMessageId = null)
    {
        var key = clientMessageId ?? NextKey();
        await socket.SendAsync(new { type = "message", conversationId = _conversationId, clientMessageId = key, content }, cancellation);
        var ack = await ExpectAsync(socket, $"the ack of '{content}'", f => f.Type() == "ack" && f.Str("clientMessageId") == key, cancellation);
        Require(ack.Long("conversationId") == _conversationId, $"the ack names conversation {Show(ack.Long("conversationId"))}, expected {_conversationId}");
        return new Sent(Field(ack, "messageId", "the ack"), Field(ack, "seq", "the ack"), key, content, ack.Str("timestamp"));
    }

    private Task ExpectPresenceAsync(string status, CancellationToken cancellation) =>
        ExpectAsync(_a, $"Bob's presence {status}",
            f => f.Type() == "presence" && f.Long("senderId") == _bob.UserId && f.Str("presenceStatus") == status, cancellation);

    private async Task<JsonElement> ExpectAsync(ChatSocket socket, string what, Func<JsonElement, bool> match, CancellationToken cancellation, List<JsonElement>? passed = null) =>
        (await ExpectEachAsync(socket, cancellation, passed, (what, match)))[0];

    private Task<JsonElement[]> ExpectEachAsync(ChatSocket socket, CancellationToken cancellation, params (string What, Func<JsonElement, bool> Match)[] expected) =>
        ExpectEachAsync(socket, cancellation, null, expected);

    /// <summary>
    /// Reads frames until each expectation has matched one, in any order. Frames that match none are passed over
    /// (and kept in <paramref name="passed"/>), except <c>error</c> frames, which fail the check at once.
    /// </summary>
    private async Task<JsonElement[]> ExpectEachAsync(ChatSocket socket, CancellationToken cancellation, List<JsonElement>? passed, params (string What, Func<JsonElement, bool> Match)[] expected)
    {
        var found = new JsonElement?[expected.Length];
        while (Array.FindIndex(found, f => f is null) is var next and >= 0)
        {
            var what = expected[next].What;
            Step = $"{what} on {socket.Name}'s socket";
            var frame = await socket.ReceiveAsync(cancellation)
                ?? throw new SmokeFailure($"{socket.Name}'s socket closed ({socket.CloseSummary}) before {what} arrived");
            var index = Enumerable.Range(0, expected.Length).FirstOrDefault(i => found[i] is null && expected[i].Match(frame), -1);
            if (index >= 0)
            {
                found[index] = frame;
            }
            else if (frame.Type() == "error")
            {
                throw new SmokeFailure($"{socket.Name} got error {frame.Str("code")} ({frame.Str("message")}) while waiting for {what}");
            }
            else
            {
                passed?.Add(frame);
            }
        }
        return [.. found.Select(f => f!.Value)];
    }

    private async Task<JsonElement> HttpAsync(SmokeUser user, HttpMethod method, string path, object? body, int expected, CancellationToken cancellation)
    {
        Step = $"the answer to {method} /{path}";
        var response = await user.Api.SendAsync(method, path, body, cancellation);
        Require(response.Status == expected, $"{response.Describe()} Expected HTTP {expected}.");
        return response.Body;
    }

    private Func<JsonElement, bool> IsMessage(Sent sent) =>
        f => f.Type() == "message" && f.Long("conversationId") == _conversationId && f.Str("clientMessageId") == sent.ClientMessageId;

    private Func<JsonElement, bool> IsJoined(SmokeUser user) =>
        f => f.Type() == "member" && f.Long("conversationId") == _conversationId && f.Long("userId") == user.UserId && f.Str("change") == "joined";

    private string NextKey() => $"smoke-{_run}-{++_counter}";

    private static long Field(JsonElement element, string name, string what) =>
        element.Long(name) ?? throw new SmokeFailure($"{what} has no integer '{name}'");

    private static void Require(bool condition, string problem)
    {
        if (!condition)
        {
            throw new SmokeFailure(problem);
        }
    }

    private static string Show(long? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "(none)";

    private static string Show(bool? value) => value?.ToString().ToLowerInvariant() ?? "(none)";

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(_sockets.Select(s => s.DisposeAsync().AsTask()));
        foreach (var user in new[] { _alice, _bob, _carol, _dave })
        {
            user.Api.Dispose();
        }
    }

    private sealed record Sent(long MessageId, long Seq, string ClientMessageId, string Content, string? Timestamp);

    private sealed class SmokeUser(string externalId, string name, GatewayTarget target)
    {
        public string ExternalId { get; } = externalId;

        public string Name { get; } = name;

        public GatewayTarget Target { get; } = target;

        public ChatApi Api { get; } = new(target);

        public long UserId { get; set; }
    }
}
