using System.Globalization;
using System.Net.WebSockets;
using System.Text.Json;
using Chat.Cli.Client;
using Chat.Cli.Infrastructure;

namespace Chat.Cli.Terminal;

/// <summary>
/// The interactive side of <c>chat connect</c>: typed lines become commands or messages to the open conversation,
/// and every frame the gateway sends is printed as it arrives. Lines and frames are handled one at a time (a line's
/// HTTP calls finish before the next frame is printed), so the transcript reads in order and the state needs no locks.
/// A line that asks the gateway for something (a message, /sync, /edit, /delete) waits for its answer before the next
/// line is read, so that lines piped in from a script act one after another, as they would when typed.
/// </summary>
internal sealed class ChatTerminal
{
    /// <summary>The slash commands as their help shows them; a command given the wrong arguments answers with its row.</summary>
    private static readonly (string Syntax, string Description)[] SlashCommands =
    [
        ("/list", "your conversations, with unread counts"),
        ("/open <conversationId>", "show a conversation's members and recent messages; lines you type go to it"),
        ("/sync [<seq>]", "replay the open conversation's messages after <seq> (default: the last one shown)"),
        ("/edit <seq> <text>", "change one of your messages in the open conversation"),
        ("/delete <seq>", "delete one of your messages in the open conversation"),
        ("/status <status>", "online, away, busy or offline"),
        ("/help", "this list"),
        ("/quit", "close the connection and leave (also Ctrl-D)"),
        ("//<text>", "send a message that starts with a slash: //etc sends /etc"),
    ];

    public static string Commands => $"""
        Commands:
        {HelpText.Table(SlashCommands)}
        Anything else is sent as a message to the open conversation.
        """;

    private const int RecentMessages = 20;

    /// <summary>The largest page <c>GET /api/conversations</c> gives.</summary>
    private const int ConversationsPage = 100;

    // Short enough that a gateway back after a restart is noticed within seconds, long enough not to hammer one that
    // is down (one handshake per user every 10 s).
    private const int MaxBackoffSeconds = 10;

    // C0 controls but tab (which is white space a message may start with), and DEL.
    private static readonly char[] ControlKeystrokes = [.. Enumerable.Range(0, 32).Where(c => c != '\t').Select(c => (char)c), '\u007f'];

    // A user in hundreds of conversations would otherwise scroll them all past before the prompt.
    private const int ConversationsAtStart = 20;

    /// <summary>How long a typed line waits for the gateway's answer before the next line is read.</summary>
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How often read receipts go out: the newest message seen in each conversation, once. A receipt per message
    /// would spend the connection's rate limit (which <c>read</c> shares with <c>message</c>) on a busy
    /// conversation, and a user who only reads would be refused and then disconnected.
    /// </summary>
    private static readonly TimeSpan ReadReceiptInterval = TimeSpan.FromSeconds(1);

    private readonly ChatApi _api;
    private readonly TimeSpan? _reconnectFor;
    private GatewayTarget _target;
    private ChatSocket _socket;
    private readonly TextReader _input;
    private readonly TextWriter _output;
    private readonly long _me;
    private readonly SemaphoreSlim _turn = new(1, 1);
    private readonly Dictionary<long, string> _labels = [];
    private readonly Dictionary<long, string> _names = [];
    private readonly Dictionary<long, long> _lastSeq = [];
    // Per conversation, the change position this terminal holds: every edit and deletion up to it is shown.
    private readonly Dictionary<long, long> _lastChangeSeq = [];
    private readonly Dictionary<(long Conversation, long Seq), long> _messageIds = [];
    private readonly Dictionary<long, long> _seqs = [];
    // Who sent each message shown, and the last position each reader's receipts named: a receipt that only covers
    // the reader's own lines is not shown.
    private readonly Dictionary<(long Conversation, long Seq), long> _senders = [];
    private readonly Dictionary<(long Conversation, long Reader), long> _readUpTo = [];
    private readonly Dictionary<string, (long Conversation, string Content)> _pending = [];
    private readonly Dictionary<long, long> _readsDue = [];
    private readonly HashSet<(long Conversation, long? Sender)> _typing = [];
    // Conversations whose whole roster was fetched to name a reader.
    private readonly HashSet<long> _rosters = [];
    // Conversations with a replay under way, and the page last asked for: each synced page with hasMore asks for
    // the next, so a second /sync started beside it would run a second chain and show every later page twice.
    private readonly Dictionary<long, Request> _replaying = [];
    private long? _open;
    private Awaited? _awaited;
    // What the gateway's welcome says it takes; until then (an older gateway says nothing), the protocol's defaults.
    private int _maxContentLength = 4000;
    private int _maxFrameBytes = 64 * 1024;
    private Request? _lastRequest;
    // The status the user set with /status, given again to a new connection; null while online.
    private string? _status;
    // The user's status as this terminal last showed or set it: a presence frame about the user that says it again
    // (the gateway repeats a device's own change to it once that device has heard of another's) prints nothing.
    private string? _shownStatus;

    /// <param name="socket">The connection to start with; the terminal disposes it, and any that replaces it.</param>
    /// <param name="reconnectFor">How long to keep trying to reconnect after the connection is lost; null: never.</param>
    public ChatTerminal(ChatApi api, GatewayTarget target, ChatSocket socket, TextReader input, TextWriter output, JsonElement me, TimeSpan? reconnectFor)
    {
        _api = api;
        _target = target;
        _socket = socket;
        _reconnectFor = reconnectFor;
        _input = input;
        _output = output;
        _me = me.Long("userId") ?? 0;
        _names[_me] = "you";
    }

    /// <summary>
    /// Runs until <c>/quit</c>, the end of the input, Ctrl-C (exit 0), or the connection ending for good (exit 1): closed
    /// by the gateway for a cause that a new connection would meet again, or lost and not restored in time.
    /// </summary>
    public async Task<int> RunAsync(CancellationToken cancellation)
    {
        try
        {
            return await RunSessionAsync(cancellation);
        }
        finally
        {
            await _socket.DisposeAsync();
        }
    }

    private async Task<int> RunSessionAsync(CancellationToken cancellation)
    {
        await ReadUntilReadyAsync(cancellation);
        await ListAsync(cancellation, atMost: ConversationsAtStart);
        Note("connected. /open <conversationId> to chat, /help for commands.");

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var receiving = ReceiveLoopAsync(stop.Token);
        var receipts = ReadReceiptLoopAsync(stop.Token);
        // A console's ReadLine blocks its thread whatever the token says: it runs on its own so that a closed socket
        // or Ctrl-C still ends the session.
        var reading = Task.Run(() => InputLoopAsync(stop.Token), CancellationToken.None);
        var interrupted = Task.Delay(Timeout.Infinite, cancellation);

        var first = await Task.WhenAny(receiving, reading, interrupted);
        while (first == receiving)
        {
            await receiving;
            bool resumed;
            // Ctrl-C, /quit or the end of the input while reconnecting: leave, as the user asked.
            using var leaving = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            var reconnecting = ReconnectAsync(leaving.Token);
            if (await Task.WhenAny(reconnecting, reading) == reading && !reconnecting.IsCompleted)
            {
                await leaving.CancelAsync();
            }
            try
            {
                resumed = await reconnecting;
            }
            catch (OperationCanceledException) when (leaving.IsCancellationRequested)
            {
                await stop.CancelAsync();
                await receipts.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                Note("bye.");
                return CliApp.Ok;
            }
            if (!resumed)
            {
                await stop.CancelAsync();
                await receipts.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                return CliApp.Failed;
            }
            receiving = ReceiveLoopAsync(stop.Token);
            first = await Task.WhenAny(receiving, reading, interrupted);
        }
        if (first == reading)
        {
            try
            {
                await reading;
            }
            catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
            {
                // Ctrl-C while a line waited for its answer: leave like /quit.
            }
        }
        // Close, and keep printing what the gateway still sends until its close arrives (or 5 s pass).
        using var closing = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            // What the user has seen is read, though the next round of receipts was not due yet.
            await InTurnAsync(() => SendReadReceiptsAsync(closing.Token), closing.Token);
            await _socket.CloseAsync(closing.Token);
            await receiving.WaitAsync(closing.Token);
        }
        catch (OperationCanceledException)
        {
            // The gateway did not answer the close in time; disposing the socket aborts it.
        }
        await stop.CancelAsync();
        await receiving.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await receipts.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (_pending.Count > 0)
        {
            Problem($"{Count(_pending.Count, "message")} had no answer yet: it may or may not have been stored; /open the conversation to see.");
        }
        Note("bye.");
        return CliApp.Ok;
    }

    private async Task ReadUntilReadyAsync(CancellationToken cancellation)
    {
        while (await _socket.ReceiveAsync(cancellation) is { } frame)
        {
            Welcomed(frame);
            if (frame.Type() == "ready")
            {
                var conversations = frame.Items("conversations").ToList();
                Note($"{Count(conversations.Count, "conversation")}, {Count(conversations.Sum(c => c.Long("unreadCount") ?? 0), "unread message")}.");
                // Online is what a new connection is anyway; another status was set on another device.
                _shownStatus = frame.Str("presenceStatus");
                if (_shownStatus is { } status and not "online")
                {
                    Note($"your status is {Display.Safe(status)}, as another device of yours set it.");
                }
                return;
            }
        }
        throw new CliFailure(_socket.CloseStatus is null
            ? "connection lost before the gateway was ready: it went away without closing the connection."
            : $"the gateway closed the connection ({_socket.CloseSummary}) before it was ready.");
    }

    /// <summary>
    /// After the connection ended: says why, and when a new one may fare better (the connection was lost, the gateway
    /// restarted or failed, or the token expired and this terminal signs its own), opens one, with backoff, until
    /// <see cref="_reconnectFor"/> runs out. Once connected it catches up the open conversation and resends the
    /// messages that had no answer, with their keys, so that each is stored once. False when it gave up.
    /// </summary>
    private async Task<bool> ReconnectAsync(CancellationToken cancellation)
    {
        var ended = _socket.CloseStatus is null ? "connection lost: the gateway went away without closing the connection." : $"the gateway closed the connection ({_socket.CloseSummary}).";
        var expired = _socket.CloseStatus == WebSocketCloseStatus.PolicyViolation && _socket.CloseDescription == "token expired";
        var worthRetrying = _socket.CloseStatus is null or WebSocketCloseStatus.EndpointUnavailable or WebSocketCloseStatus.InternalServerError
            || (expired && _target.Renew is not null);
        if (_reconnectFor is not { } reconnectFor || !worthRetrying)
        {
            // A --token cannot be renewed here: say how to go on.
            Problem(expired && _target.Renew is null ? $"{ended} Get a new token with 'chat token', or connect with --as, which renews its own." : ended);
            return false;
        }
        Problem($"{ended} Reconnecting.");
        var started = DateTime.UtcNow;
        var giveUpAt = started + reconnectFor;
        var delay = expired ? TimeSpan.Zero : TimeSpan.FromSeconds(1);
        var told = false;
        while (true)
        {
            // Lines typed meanwhile are taken: a message waits in _pending for the new connection.
            await Task.Delay(delay, cancellation);
            // An attempt that hangs (a gateway that accepts and never answers) ends with the time left.
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            attempt.CancelAfter(Max(giveUpAt - DateTime.UtcNow, TimeSpan.FromSeconds(1)));
            await _turn.WaitAsync(cancellation);
            try
            {
                var ready = await ConnectAgainAsync(attempt.Token);
                await ResumeAsync(ready, cancellation);
                return true;
            }
            catch (Exception e) when (e is OperationCanceledException && !cancellation.IsCancellationRequested
                                      || e is CliFailure and not HandshakeRefused { Status: not (429 or 502 or 503 or 504) })
            {
                var why = e is CliFailure ? e.Message : "the gateway did not answer";
                var left = giveUpAt - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                {
                    Problem($"gave up reconnecting after {(DateTime.UtcNow - started).TotalSeconds:0} s: {why}");
                    return false;
                }
                if (!told)
                {
                    Note($"cannot reconnect yet ({why}); trying again for up to {reconnectFor.TotalSeconds:0} s.");
                    told = true;
                }
                // Backoff, with a last attempt at the deadline rather than giving up early.
                delay = Min(TimeSpan.FromSeconds(Math.Clamp(delay.TotalSeconds * 2, 1, MaxBackoffSeconds)), left);
            }
            catch (CliFailure e)
            {
                // Refused for a reason a retry would meet again: a token the gateway does not take.
                Problem(e.Message);
                return false;
            }
            finally
            {
                _turn.Release();
            }
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>A new connection, with a fresh token when this terminal signs its own, read up to its <c>ready</c>.</summary>
    private async Task<JsonElement> ConnectAgainAsync(CancellationToken cancellation)
    {
        if (_target.Renew is { } renew)
        {
            _target = _target with { Token = renew() };
            _api.UseToken(_target.Token);
        }
        var socket = await ChatSocket.ConnectAsync(_target, catchup: false, "you", cancellation);
        try
        {
            while (await socket.ReceiveAsync(cancellation) is { } frame)
            {
                Welcomed(frame);
                if (frame.Type() == "ready")
                {
                    await _socket.DisposeAsync();
                    _socket = socket;
                    return frame;
                }
            }
            throw new CliFailure(socket.CloseStatus is null ? "connection lost before the gateway was ready" : $"the gateway closed the connection ({socket.CloseSummary}) before it was ready");
        }
        catch
        {
            await socket.DisposeAsync();
            throw;
        }
    }

    private async Task ResumeAsync(JsonElement ready, CancellationToken cancellation)
    {
        _typing.Clear();
        // The old connection's replays ended with it; the open conversation's goes on from what it showed.
        _replaying.Clear();
        // A conversation this terminal has shown missed messages stored meanwhile. The open one is followed from the
        // position /open showed, even when it had no messages yet, and its edits and deletions count too: they are
        // replayed with it (another conversation's change position is not kept, so its changes are not compared).
        var missed = ready.Items("conversations")
            .Where(c => c.Long("conversationId") is { } id
                        && (id == _open
                            ? c.Long("lastSeq") > _lastSeq.GetValueOrDefault(id) || c.Long("lastChangeSeq") > _lastChangeSeq.GetValueOrDefault(id)
                            : _lastSeq.TryGetValue(id, out var shown) && c.Long("lastSeq") > shown))
            .Select(c => c.Long("conversationId")!.Value)
            .ToList();
        Note(missed.Count(id => id != _open) switch
        {
            0 => "reconnected.",
            var others => $"reconnected. {Count(others, "other conversation")} had new messages meanwhile: /list.",
        });
        _shownStatus = ready.Str("presenceStatus");
        if (_status is { } status)
        {
            // Each connection starts online; the user had said otherwise.
            await _socket.SendAsync(new { type = "presence", presenceStatus = status }, cancellation);
            _shownStatus = status;
        }
        if (_open is { } open && missed.Contains(open))
        {
            // The messages after the last one shown, and the edits and deletions made meanwhile to those shown.
            await SendPageAsync(open, new { type = "sync", conversationId = open, afterSeq = _lastSeq.GetValueOrDefault(open), afterChangeSeq = _lastChangeSeq.GetValueOrDefault(open) }, cancellation);
        }
        foreach (var key in _pending.Keys)
        {
            // The same key: if the first was stored, the gateway answers with its ack and stores nothing more.
            await _socket.SendAsync(PendingFrame(key), cancellation);
        }
    }

    private object PendingFrame(string key) =>
        _pending[key] is var (conversationId, content) ? new { type = "message", conversationId, clientMessageId = key, content } : throw new InvalidOperationException();

    private async Task ReceiveLoopAsync(CancellationToken cancellation)
    {
        try
        {
            while (await _socket.ReceiveAsync(cancellation) is { } frame)
            {
                await InTurnAsync(() => ShowFrameAsync(frame, cancellation), cancellation);
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Leaving.
        }
    }

    /// <summary>Takes the limits a <c>welcome</c> names.</summary>
    private void Welcomed(JsonElement frame)
    {
        if (frame.Type() == "welcome" && frame.TryGetProperty("limits", out var limits) && limits.ValueKind == JsonValueKind.Object)
        {
            _maxContentLength = (int)(limits.Long("maxContentLength") ?? _maxContentLength);
            _maxFrameBytes = (int)(limits.Long("maxFrameBytes") ?? _maxFrameBytes);
        }
    }

    private async Task ReadReceiptLoopAsync(CancellationToken cancellation)
    {
        try
        {
            while (true)
            {
                await Task.Delay(ReadReceiptInterval, cancellation);
                await InTurnAsync(() => SendReadReceiptsAsync(cancellation), cancellation);
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Leaving.
        }
    }

    private async Task SendReadReceiptsAsync(CancellationToken cancellation)
    {
        if (!_socket.IsOpen)
        {
            return; // they go on the next connection
        }
        foreach (var (conversationId, messageId) in _readsDue)
        {
            await _socket.SendAsync(new { type = "read", conversationId, messageId }, cancellation);
        }
        _readsDue.Clear();
    }

    private void ReadLater(long conversationId, long messageId) =>
        _readsDue[conversationId] = Math.Max(_readsDue.GetValueOrDefault(conversationId), messageId);

    private async Task InputLoopAsync(CancellationToken cancellation)
    {
        while (await _input.ReadLineAsync(cancellation) is { } typed)
        {
            // A message keeps its leading white space (indented code, a quoted reply); the line ending and trailing
            // white space go.
            var line = typed.TrimEnd();
            if (line.Trim() == "/quit")
            {
                return;
            }
            await InTurnAsync(async () =>
            {
                try
                {
                    await HandleLineAsync(line, cancellation);
                }
                catch
                {
                    _awaited = null; // nothing was sent, so nothing will answer
                    throw;
                }
            }, cancellation);
            if (Volatile.Read(ref _awaited) is { } awaited
                && await Task.WhenAny(awaited.Answered.Task, Task.Delay(AnswerTimeout, cancellation)) != awaited.Answered.Task)
            {
                cancellation.ThrowIfCancellationRequested();
                Problem($"no answer from the gateway within {AnswerTimeout.TotalSeconds:0} s.");
            }
        }
    }

    private async Task InTurnAsync(Func<Task> handle, CancellationToken cancellation)
    {
        await _turn.WaitAsync(cancellation);
        try
        {
            await handle();
        }
        catch (CliFailure e)
        {
            Problem(e.Message);
        }
        finally
        {
            _turn.Release();
        }
    }

    private Task HandleLineAsync(string line, CancellationToken cancellation)
    {
        // Control characters a terminal leaves at the start of a line (Ctrl-L to clear the screen, a stray Escape)
        // are keystrokes, not text: '\f/status busy' is the command, not a message.
        line = line.TrimStart(ControlKeystrokes);
        if (string.IsNullOrWhiteSpace(line))
        {
            return Task.CompletedTask;
        }
        if (!line.StartsWith('/'))
        {
            return SendMessageAsync(line, cancellation);
        }
        if (line.StartsWith("//", StringComparison.Ordinal))
        {
            // The escape for a message that starts with a slash: "//etc" sends "/etc".
            return SendMessageAsync(line[1..], cancellation);
        }
        // Each command takes exactly what its syntax says: an extra word ('/sync 1 2') or a malformed one ('/open x')
        // gets the usage line rather than a guess at what was meant.
        var (name, rest) = FirstWord(line);
        switch (name)
        {
            case "/help" when rest.Length == 0:
                _output.WriteLine(Commands);
                return Task.CompletedTask;
            case "/list" when rest.Length == 0:
                return ListAsync(cancellation);
            case "/open" when Number(rest, 1) is { } id:
                return OpenAsync(id, cancellation);
            case "/sync" when rest.Length == 0:
                return SyncAsync(null, cancellation);
            case "/sync" when Number(rest, 0) is { } after:
                return SyncAsync(after, cancellation);
            case "/edit" when FirstWord(rest) is (var seqText, { Length: > 0 } text) && Number(seqText, 1) is { } seq:
                return ChangeAsync("edit", seq, text, cancellation);
            case "/delete" when Number(rest, 1) is { } seq:
                return ChangeAsync("delete", seq, null, cancellation);
            case "/status" when rest is "online" or "away" or "busy" or "offline":
                _status = rest == "online" ? null : rest;
                _shownStatus = rest;
                if (!_socket.IsOpen)
                {
                    // The next connection is told (it starts online, which needs no telling).
                    Note($"your status is {rest}; not connected: it goes once the connection is back.");
                    return Task.CompletedTask;
                }
                Note($"your status is {rest}.");
                return _socket.SendAsync(new { type = "presence", presenceStatus = rest }, cancellation);
            default:
                var usage = SlashCommands.FirstOrDefault(c => FirstWord(c.Syntax).Word == name);
                Problem(usage.Syntax is null ? $"unknown command {name}; /help lists the commands." : $"usage: {usage.Syntax}: {usage.Description}");
                return Task.CompletedTask;
        }
    }

    /// <summary>The first word of <paramref name="text"/> and what follows it, without the whitespace between them.</summary>
    private static (string Word, string After) FirstWord(string text)
    {
        var end = 0;
        while (end < text.Length && !char.IsWhiteSpace(text[end]))
        {
            end++;
        }
        return (text[..end], text[end..].TrimStart());
    }

    /// <param name="atMost">
    /// Rows to print, the latest activity first; every conversation is still read, so that incoming frames of the
    /// others are labelled by their titles and members' names.
    /// </param>
    private async Task ListAsync(CancellationToken cancellation, int atMost = int.MaxValue)
    {
        // Every conversation, a page at a time. One whose activity changes between two pages may come on both (it is
        // listed once) or on neither (its next message shows it).
        var items = new List<JsonElement>();
        var listed = new HashSet<long>();
        string? cursor = null;
        var cursors = new HashSet<string>();
        do
        {
            var path = ChatApi.WithQuery("api/conversations", ("cursor", cursor), ("limit", ConversationsPage));
            var page = (await _api.GetAsync(path, cancellation)).Expect(200);
            var before = items.Count;
            items.AddRange(page.Items("items").Where(c => c.Long("conversationId") is { } id && listed.Add(id)));
            cursor = page.Str("nextCursor");
            // A cursor seen before, or a page of nothing new, would page forever (a proxy that drops the query).
            if (items.Count == before || (cursor is not null && !cursors.Add(cursor)))
            {
                break;
            }
        }
        while (cursor is not null);
        if (items.Count == 0)
        {
            Note("no conversations yet: create one with 'chat conversations create'.");
            return;
        }
        foreach (var conversation in items)
        {
            Remember(conversation);
        }
        var rows = new List<string[]> { new[] { "ID", "CONVERSATION", "UNREAD", "LAST MESSAGE" } };
        rows.AddRange(items.Take(atMost).Select(c => new[]
        {
            Display.Number(c.Long("conversationId")),
            Display.Label(c, _me),
            Display.Number(c.Long("unreadCount")),
            Display.LastMessage(c, _me),
        }));
        Display.Table(_output, rows);
        if (items.Count > atMost)
        {
            Note($"and {Count(items.Count - atMost, "more conversation")}: /list shows them all.");
        }
    }

    private async Task OpenAsync(long conversationId, CancellationToken cancellation)
    {
        var detail = await _api.GetAsync($"api/conversations/{conversationId}", cancellation);
        if (detail is { Status: 404, NoEndpoint: false })
        {
            Problem($"conversation {conversationId} not found, or you are not a member of it.");
            return;
        }
        var conversation = detail.Expect(200);
        Remember(conversation);
        var page = (await _api.GetAsync($"api/conversations/{conversationId}/messages?limit={RecentMessages}", cancellation)).Expect(200);
        _open = conversationId;
        // The page shows every change up to its lastChangeSeq.
        _lastChangeSeq[conversationId] = Math.Max(_lastChangeSeq.GetValueOrDefault(conversationId), page.Long("lastChangeSeq") ?? 0);

        var members = conversation.Items("members").Select(m => $"{Display.Name(m)} ({m.Str("presenceStatus") ?? "?"})");
        Note($"{_labels[conversationId]} ({Display.Kind(conversation)} {conversationId}): {string.Join(", ", members)}");
        var items = page.Items("items").ToList();
        if (page.Bool("hasMore") == true && items.Count > 0)
        {
            Note($"earlier messages: chat history {conversationId} --before {items[0].Long("seq")}");
        }
        foreach (var message in items)
        {
            Track(message);
            _output.WriteLine(Display.Message(message, _me));
        }
        if (items.Count == 0)
        {
            Note("no messages yet.");
        }
        else if (items[^1].Long("messageId") is { } last)
        {
            // The user has now been shown these messages.
            await _socket.SendAsync(new { type = "read", conversationId, messageId = last }, cancellation);
        }
    }

    private async Task SendMessageAsync(string content, CancellationToken cancellation)
    {
        if (_open is not { } conversationId)
        {
            Problem("open a conversation first: /open <conversationId> (see /list).");
            return;
        }
        var key = Guid.NewGuid().ToString("N");
        var frame = new { type = "message", conversationId, clientMessageId = key, content };
        if (TooLong(content, frame))
        {
            return;
        }
        _pending[key] = (conversationId, content);
        if (!_socket.IsOpen && _reconnectFor is not null)
        {
            Note("not connected: the message goes once the connection is back.");
            return;
        }
        Await(f => f.Type() is "ack" or "error" && f.Str("clientMessageId") == key);
        await SendRequestAsync(new Request("message", frame, key), cancellation);
    }

    private async Task SyncAsync(long? afterSeq, CancellationToken cancellation)
    {
        if (_open is not { } conversationId)
        {
            Problem("open a conversation first: /open <conversationId>.");
            return;
        }
        if (NotConnected("/sync"))
        {
            return;
        }
        if (_replaying.ContainsKey(conversationId))
        {
            Problem("a replay of this conversation is under way; it ends with 'synced up to #<seq>'. /sync again after it.");
            return;
        }
        var after = afterSeq ?? _lastSeq.GetValueOrDefault(conversationId);
        Await(f => f.Type() == "synced" && f.Long("conversationId") == conversationId && f.Bool("hasMore") != true);
        await SendPageAsync(conversationId, new { type = "sync", conversationId, afterSeq = after }, cancellation);
    }

    private async Task ChangeAsync(string type, long seq, string? content, CancellationToken cancellation)
    {
        if (_open is not { } conversationId)
        {
            Problem("open a conversation first: /open <conversationId>.");
            return;
        }
        if (!_messageIds.TryGetValue((conversationId, seq), out var messageId))
        {
            Problem($"#{seq} is not a message shown in this conversation; /open it again or /sync.");
            return;
        }
        if (NotConnected($"/{type}"))
        {
            return;
        }
        object frame = content is null ? new { type, conversationId, messageId } : new { type, conversationId, messageId, content };
        if (content is not null && TooLong(content, frame))
        {
            return;
        }
        Await(f => f.Type() == (content is null ? "messageDeleted" : "messageEdited") && f.Long("messageId") == messageId);
        await SendRequestAsync(new Request(type, frame), cancellation);
    }

    /// <summary>
    /// Says so when the connection is down (lost, or being restored): a command that needs an answer from the gateway
    /// is not kept for the next connection, as a message is, so the user gives it again then.
    /// </summary>
    private bool NotConnected(string command)
    {
        if (_socket.IsOpen)
        {
            return false;
        }
        Problem($"not connected: {command} again once the connection is back.");
        return true;
    }

    /// <summary>
    /// Refuses here what the gateway would refuse: content past its length, which it answers with an error, and a
    /// frame past its size, which it answers by closing the connection (1009), ending the session.
    /// </summary>
    private bool TooLong(string content, object frame)
    {
        if (content.Length > _maxContentLength)
        {
            Problem($"not sent: the text is {content.Length} UTF-16 code units long; the gateway takes at most {_maxContentLength}.");
            return true;
        }
        if (ChatSocket.SizeOf(frame) is var size && size > _maxFrameBytes)
        {
            Problem($"not sent: the frame would be {size} bytes; the gateway takes at most {_maxFrameBytes}.");
            return true;
        }
        return false;
    }

    /// <summary>Asks for a page of a replay, which goes on until a page says there is no more (or one is refused).</summary>
    private Task SendPageAsync(long conversationId, object frame, CancellationToken cancellation)
    {
        var page = new Request("sync", frame);
        _replaying[conversationId] = page;
        return SendAsync();

        async Task SendAsync()
        {
            try
            {
                await SendRequestAsync(page, cancellation);
            }
            catch
            {
                // Not sent, so no page will come: a /sync given later is not refused as a replay under way.
                _replaying.Remove(conversationId);
                throw;
            }
        }
    }

    /// <summary>Sends a frame that a typed line waits for; one refused as <c>rate_limited</c> is sent again when the gateway says.</summary>
    private Task SendRequestAsync(Request request, CancellationToken cancellation)
    {
        _lastRequest = request;
        return _socket.SendAsync(request.Frame, cancellation);
    }

    /// <summary>
    /// A <c>rate_limited</c> answer to the request in flight (lines pasted faster than the limit, a long /sync's
    /// pages), or to a read receipt: sent again after <c>retryAfterMs</c>, as the protocol asks, rather than lost.
    /// </summary>
    private bool RetryLater(JsonElement frame, CancellationToken cancellation)
    {
        if (frame.Type() != "error" || frame.Str("code") != "rate_limited")
        {
            return false;
        }
        var delay = TimeSpan.FromMilliseconds(Math.Clamp(frame.Long("retryAfterMs") ?? 1000, 1, 60_000));
        if (frame.Str("frameType") == "read" && frame.Long("conversationId") is { } conversation && frame.Long("messageId") is { } message)
        {
            // The next round of receipts carries it (or a later one).
            ReadLater(conversation, message);
            return true;
        }
        if (frame.Str("frameType") == "message" && frame.Str("clientMessageId") is { } key && _pending.ContainsKey(key))
        {
            // Any message still waiting for its answer (a typed line, or one resent after a reconnect), by its key.
            _ = ResendAsync(new Request("message", PendingFrame(key), key), delay, cancellation, always: true);
            return true;
        }
        if (frame.Str("frameType") == "sync" && frame.Long("conversationId") is { } replayed && _replaying.TryGetValue(replayed, out var page))
        {
            // A replay's page, by its conversation: lines typed meanwhile do not end the replay.
            _ = ResendAsync(page, delay, cancellation, stillWanted: () => _replaying.TryGetValue(replayed, out var current) && ReferenceEquals(current, page));
            return true;
        }
        if (_lastRequest is not { } request || frame.Str("frameType") != request.Type || frame.Str("clientMessageId") != request.Key)
        {
            return false;
        }
        _ = ResendAsync(request, delay, cancellation);
        return true;
    }

    /// <param name="always">Send it even when another request was sent since (a message still pending by its key).</param>
    /// <param name="stillWanted">Whether to send it then; by default, when it is still the last request sent.</param>
    private async Task ResendAsync(Request request, TimeSpan delay, CancellationToken cancellation, bool always = false, Func<bool>? stillWanted = null)
    {
        try
        {
            await Task.Delay(delay, cancellation);
            await InTurnAsync(() => (stillWanted?.Invoke() ?? (always ? _pending.ContainsKey(request.Key!) : ReferenceEquals(_lastRequest, request))) && _socket.IsOpen
                ? _socket.SendAsync(request.Frame, cancellation)
                : Task.CompletedTask, cancellation);
        }
        catch (OperationCanceledException)
        {
            // Leaving.
        }
    }

    private async Task ShowFrameAsync(JsonElement frame, CancellationToken cancellation)
    {
        if (RetryLater(frame, cancellation))
        {
            return;
        }
        try
        {
            await ShowAsync(frame, cancellation);
        }
        finally
        {
            // Refusals of sync, edit and delete name no key; only one line waits at a time, so an error is its answer.
            if (_awaited is { } awaited && (awaited.Match(frame) || frame.Type() == "error"))
            {
                _awaited = null;
                awaited.Answered.TrySetResult();
            }
        }
    }

    private void Await(Func<JsonElement, bool> answer) => _awaited = new Awaited(answer);

    private async Task ShowAsync(JsonElement frame, CancellationToken cancellation)
    {
        var conversationId = frame.Long("conversationId") ?? 0;
        switch (frame.Type())
        {
            // A live copy of a message already shown: the history page of /open, fetched while it was being delivered,
            // had it. A /sync replay (isCatchup) is shown again, since it was asked for.
            case "message" when frame.Bool("isCatchup") == false && frame.Long("seq") is { } seq && _messageIds.ContainsKey((conversationId, seq)):
                break;
            case "message":
                Track(frame);
                _output.WriteLine($"[{Label(conversationId)}] {Display.Message(frame, _me)}");
                // Shown in the open conversation, live or replayed: read (a receipt for an older message changes nothing).
                if (conversationId == _open && frame.Long("messageId") is { } shown)
                {
                    ReadLater(conversationId, shown);
                }
                break;
            case "ack" when frame.Str("clientMessageId") is { } key && _pending.Remove(key, out var sent):
                // A resend after a reconnect may be answered for a message that the replay before it showed already.
                if (!(frame.Long("seq") is { } ackedSeq && _messageIds.ContainsKey((sent.Conversation, ackedSeq))))
                {
                    _output.WriteLine($"[{Label(sent.Conversation)}] {Display.Line(frame.Long("seq"), frame.Time("timestamp"), "you", sent.Content)}");
                }
                Track(frame, _me);
                // Shown as sent, so read (protocol §4, "Catch-up"): sending does not move the sender's read position, and the
                // user's other devices would otherwise get it again in every catch-up.
                if (sent.Conversation == _open && frame.Long("messageId") is { } own)
                {
                    ReadLater(sent.Conversation, own);
                }
                break;
            // The user's own typing on another device of theirs is no news to them.
            case "typing" when frame.Long("senderId") == _me:
                break;
            // Once when someone starts and once when they stop: a client renews its typing every few seconds.
            case "typing" when frame.Bool("isTyping") == true ? _typing.Add((conversationId, frame.Long("senderId"))) : _typing.Remove((conversationId, frame.Long("senderId"))):
                _output.WriteLine($"[{Label(conversationId)}] {Display.Safe(frame.Str("senderName") ?? "")} {(frame.Bool("isTyping") == true ? "is typing…" : "stopped typing")}");
                break;
            // The user's own status, changed on another device of theirs (protocol §11): not news about someone else.
            case "presence" when frame.Long("senderId") == _me:
                if (frame.Str("presenceStatus") is { } ownStatus && ownStatus != _shownStatus)
                {
                    _shownStatus = ownStatus;
                    Note($"your status is now {Display.Safe(ownStatus)}.");
                }
                break;
            case "presence":
                Note($"{Display.Safe(frame.Str("senderName") ?? "")} is {Display.Safe(frame.Str("presenceStatus") ?? "")}");
                break;
            case "read" when frame.Long("messageId") is { } read:
                if (frame.Long("senderId") is { } reader && !_names.ContainsKey(reader) && _rosters.Add(conversationId))
                {
                    // A receipt names its reader by id only, and the list names a large group's first members only:
                    // the conversation's whole roster, once.
                    var detail = await _api.GetAsync($"api/conversations/{conversationId}", cancellation);
                    if (detail.Status == 200)
                    {
                        Remember(detail.Body);
                    }
                }
                // The frame names the message's seq, which places a position before anything this terminal has shown.
                var readSeq = frame.Long("seq") ?? (_seqs.TryGetValue(read, out var held) ? held : null);
                if (readSeq is { } at && frame.Long("senderId") is { } whoRead && ReadsOnlyOwnLines(conversationId, whoRead, at))
                {
                    break;
                }
                var position = readSeq is { } readAt ? $"#{readAt}" : $"message {read}";
                // Only the user's own reads on another device carry their count, which this terminal could not make:
                // it holds only the messages it has shown.
                var left = frame.Long("unreadCount") is { } unread ? $", {Count(unread, "unread message")} left" : "";
                _output.WriteLine($"[{Label(conversationId)}] {Name(frame.Long("senderId"))} read up to {position}{left}");
                break;
            case "member":
                await ShowMemberAsync(frame, conversationId, cancellation);
                break;
            case "messageEdited":
                Changed(frame);
                _output.WriteLine($"[{Label(conversationId)}] #{frame.Long("seq")} edited by {Name(frame.Long("senderId"))}: {Display.Safe(frame.Str("content") ?? "")}");
                break;
            case "messageDeleted":
                Changed(frame);
                Track(frame);
                _output.WriteLine($"[{Label(conversationId)}] #{frame.Long("seq")} deleted");
                break;
            case "synced":
                var lastSeq = frame.Long("lastSeq") ?? 0;
                _lastSeq[conversationId] = Math.Max(_lastSeq.GetValueOrDefault(conversationId), lastSeq);
                var lastChange = frame.Long("lastChangeSeq");
                if (lastChange is { } change)
                {
                    _lastChangeSeq[conversationId] = change;
                }
                if (frame.Bool("hasMore") == true)
                {
                    // Keep going until the conversation is replayed to its end, changes included when they were asked for.
                    await SendPageAsync(conversationId, lastChange is { } afterChangeSeq
                        ? new { type = "sync", conversationId, afterSeq = lastSeq, afterChangeSeq }
                        : new { type = "sync", conversationId, afterSeq = lastSeq }, cancellation);
                }
                else
                {
                    _replaying.Remove(conversationId);
                    _output.WriteLine($"[{Label(conversationId)}] synced up to #{lastSeq}");
                }
                break;
            case "error":
                if (frame.Str("frameType") == "sync")
                {
                    // A refused page ends its replay (one refused as rate_limited is sent again, and never comes here).
                    _replaying.Remove(conversationId);
                }
                var refused = frame.Str("clientMessageId") is { } failed && _pending.Remove(failed) ? "not sent: " : "";
                Problem($"{refused}{frame.Str("code")}{Refusal(frame)}");
                break;
        }
    }

    private async Task ShowMemberAsync(JsonElement frame, long conversationId, CancellationToken cancellation)
    {
        var userId = frame.Long("userId");
        var joined = frame.Str("change") == "joined";
        if (joined && (userId == _me || userId is null || !_names.ContainsKey(userId.Value) || !_labels.ContainsKey(conversationId)))
        {
            // A new conversation or a new face: the detail names them.
            var detail = await _api.GetAsync($"api/conversations/{conversationId}", cancellation);
            if (detail.Status == 200)
            {
                Remember(detail.Body);
            }
        }
        // A member who leaves and one who is removed look the same on the wire.
        var change = (joined, userId == _me) switch
        {
            (true, true) => "you joined",
            (true, false) => $"{Name(userId)} joined",
            (false, true) => "you are no longer a member",
            (false, false) => $"{Name(userId)} left",
        };
        _output.WriteLine($"[{Label(conversationId)}] {change}");
        if (!joined && userId == _me && _open == conversationId)
        {
            _open = null;
        }
    }

    private void Remember(JsonElement conversation)
    {
        if (conversation.Long("conversationId") is not { } id)
        {
            return;
        }
        _labels[id] = Display.Label(conversation, _me);
        foreach (var member in conversation.Items("members"))
        {
            if (member.Long("userId") is { } userId && userId != _me)
            {
                _names[userId] = Display.Name(member);
            }
        }
    }

    /// <summary>
    /// Keeps a message's seq and id, so that /edit, /delete and /sync can name messages by seq, and a live copy of a
    /// message already shown is not shown twice.
    /// </summary>
    /// <param name="sender">The sender, for a frame that does not name one (an ack).</param>
    private void Track(JsonElement message, long? sender = null)
    {
        if (message.Long("conversationId") is { } conversationId && message.Long("seq") is { } seq && message.Long("messageId") is { } messageId)
        {
            _messageIds[(conversationId, seq)] = messageId;
            _seqs[messageId] = seq;
            if ((sender ?? message.Long("senderId")) is { } by)
            {
                _senders[(conversationId, seq)] = by;
            }
            _lastSeq[conversationId] = Math.Max(_lastSeq.GetValueOrDefault(conversationId), seq);
        }
    }

    /// <summary>
    /// Whether a receipt up to <paramref name="seq"/> tells nothing new: it names the reader's own line, and every
    /// message of someone else's since their last receipt shown here is before it. Clients mark their own lines read
    /// once they show them as sent (protocol §4, "Catch-up"), so without this each line would be followed by its
    /// sender's receipt for it.
    /// </summary>
    private bool ReadsOnlyOwnLines(long conversationId, long reader, long seq)
    {
        var since = _readUpTo.GetValueOrDefault((conversationId, reader));
        _readUpTo[(conversationId, reader)] = Math.Max(since, seq);
        if (_senders.GetValueOrDefault((conversationId, seq)) != reader)
        {
            return false;
        }
        for (var earlier = since + 1; earlier < seq; earlier++)
        {
            if (_senders.TryGetValue((conversationId, earlier), out var by) && by != reader)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Advances the change position held by a live change only when it is the next one, so that a gap is replayed later.</summary>
    private void Changed(JsonElement frame)
    {
        if (frame.Long("conversationId") is { } conversationId && frame.Long("changeSeq") is { } changeSeq
            && changeSeq == _lastChangeSeq.GetValueOrDefault(conversationId) + 1)
        {
            _lastChangeSeq[conversationId] = changeSeq;
        }
    }

    private string Label(long conversationId) => _labels.GetValueOrDefault(conversationId) ?? $"conversation {conversationId}";

    private string Name(long? userId) => userId is { } id && _names.TryGetValue(id, out var name) ? name : $"user {userId}";

    private static string Count(long count, string what) => count == 1 ? $"1 {what}" : $"{count} {what}s";

    private void Note(string text) => _output.WriteLine($"* {text}");

    private void Problem(string text) => _output.WriteLine($"! {text}");

    /// <summary>
    /// An error's text as this terminal shows it. The gateway names a message by its id ("Message 42 was sent by
    /// someone else.", protocol §7), which the user never sees: they know it as #seq, and gave that to /edit or
    /// /delete. A text that names the message gets its seq in place of the id; any other one is headed by the seq.
    /// </summary>
    private string Refusal(JsonElement frame)
    {
        var text = frame.Str("message") ?? "";
        if (frame.Long("messageId") is not { } id || !_seqs.TryGetValue(id, out var seq))
        {
            return $": {text}";
        }
        var byId = $"Message {id} ";
        return text.Contains(byId, StringComparison.Ordinal) ? $": {text.Replace(byId, $"Message #{seq} ", StringComparison.Ordinal)}" : $" (#{seq}): {text}";
    }

    /// <summary>A frame sent for a typed line: its type, and for a message its key, which a refusal names.</summary>
    private sealed record Request(string Type, object Frame, string? Key = null);

    /// <summary>The answer a typed line waits for.</summary>
    private sealed class Awaited(Func<JsonElement, bool> match)
    {
        public Func<JsonElement, bool> Match { get; } = match;

        public TaskCompletionSource Answered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>The whole of <paramref name="text"/> as an integer of at least <paramref name="minimum"/>, else null.</summary>
    private static long? Number(string text, long minimum) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= minimum ? value : null;
}
