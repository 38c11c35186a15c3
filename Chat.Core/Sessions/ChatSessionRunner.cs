using System.Buffers;
using System.Collections.Frozen;
using System.Net.WebSockets;
using System.Text.Unicode;
using System.Threading.Channels;
using Chat.Core.Connections;
using Chat.Core.Conversations;
using Chat.Core.Handlers;
using Chat.Core.Limits;
using Chat.Core.Logging;
using Chat.Core.Messages;
using Chat.Core.Metrics;
using Chat.Core.Options;
using Chat.Core.Protocol;
using Chat.Data;
using Chat.Data.Conversations;
using Chat.Data.Messages;
using Chat.Data.Users;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Chat.Core.Sessions;

/// <summary>
/// Runs one accepted, authenticated socket from welcome to close: register, subscribe, catch up, then a
/// receive loop beside the connection's send loop. When one ends the other gets <c>CloseTimeout</c>, then the
/// socket is aborted.
/// </summary>
public sealed class ChatSessionRunner(
    ConnectionRegistry registry,
    FrameDispatcher dispatcher,
    ConversationRepository conversations,
    MessageRepository messages,
    UserRepository users,
    PresenceAnnouncer presence,
    IChatPublisher publisher,
    MembershipFences fences,
    TokenExpiryScheduler expiries,
    IOptions<ChatLimitsOptions> limitsOptions,
    IOptions<ChatDatabaseOptions> databaseOptions,
    TimeProvider time,
    ChatMetrics metrics,
    ILogger<ChatSessionRunner> logger)
{
    private static readonly Action<object> ExpireToken = static gate => ((CloseGate)gate).Close(CloseReason.TokenExpired);
    private static readonly Action<object?> CloseForShutdown = static gate => ((CloseGate)gate!).Close(CloseReason.ServerShutdown);

    private const int InitialReceiveBufferBytes = 4096;

    /// <summary>About how many catch-up messages are read from the database at once (a conversation with more is read alone).</summary>
    internal const int CatchupMessagesPerRead = 500;

    /// <summary>How many bytes longer than "online" the longest status name in <c>ready</c> is.</summary>
    private static readonly int ReadyStatusSlack =
        Enum.GetValues<PresenceStatus>().Max(s => FrameWriter.PresenceName(s).Length) - FrameWriter.PresenceName(PresenceStatus.Online).Length;

    private readonly ChatLimitsOptions _limits = limitsOptions.Value;
    private readonly TimeSpan _requestTimeout = databaseOptions.Value.RequestTimeout;
    private readonly FrameReader _reader = new(limitsOptions.Value.MaxContentLength);
    private readonly ClientLimits _clientLimits = ClientLimits.Of(limitsOptions.Value);

    /// <param name="catchup">Replay what the user missed before <c>ready</c>; false for clients that will sync themselves.</param>
    /// <param name="stopping">Signalled when the gateway shuts down: the socket is closed with 1001 once the frame in hand is done.</param>
    /// <param name="aborted">Signalled when the socket is gone; cancels database work for it.</param>
    /// <param name="tokenExpires">When the access token expires: the socket is then closed with 1008 once the frame in hand is done.</param>
    /// <param name="transport">The stream under the socket, which tells of the closes the WebSocket library sent itself.</param>
    public async Task RunAsync(WebSocket socket, ConnectedUser user, bool catchup, CancellationToken stopping, CancellationToken aborted, DateTimeOffset? tokenExpires = null, CloseReasonStream? transport = null)
    {
        var connection = new ChatConnection(registry.NextConnectionId(), user, socket, _limits.SendQueueCapacity, _limits.SendQueueMaxBytes, metrics);
        metrics.ConnectionsOpened.Add();
        ChatLog.ConnectionOpened(logger, connection.Id, user.UserId, user.ExternalId);
        var sending = connection.RunSendLoopAsync();
        var gate = new CloseGate(this, connection);
        using var expiry = tokenExpires is { } expires ? expiries.Schedule(expires, ExpireToken, gate) : null;
        Task receiving = Task.CompletedTask;
        try
        {
            connection.Send(FrameWriter.Welcome(user.UserId, user.ExternalId, user.DisplayName, time.GetUtcNow().UtcDateTime, _clientLimits));
            registry.Register(connection);
            // Before the catch-up, which no frame is in hand for: a shutdown then closes the socket at once instead
            // of after a replay sent at the pace of a slow client.
            using var onStopping = stopping.Register(CloseForShutdown, gate);
            // Read from the start: the keep-alive's pongs are processed only inside a read, and a catch-up can
            // take longer than the keep-alive's interval plus timeout.
            var firstHeader = ReadHeaderAsync(socket);
            if (await TryStartAsync(connection, socket, catchup, aborted))
            {
                receiving = ReceiveLoopAsync(connection, socket, gate, firstHeader, transport, aborted);
                await connection.Ending;
            }
            else
            {
                // Not acted on; it ends with the client's close, or fails when the socket goes.
                receiving = IgnoreFailure(firstHeader);
            }
        }
        finally
        {
            // Leaving waits on the database: a token that expires meanwhile must not turn the echo of the client's
            // close into 1008, nor a close the gateway asked for before this point go unrecorded.
            gate.Seal();
            var decided = connection.CloseReason;
            await LeaveAsync(connection);
            await CloseAsync(connection, socket, sending, receiving);
            metrics.ConnectionsClosed.Add(decided?.Label ?? (socket.CloseStatus is null ? CloseReason.Lost.Label : CloseReason.ClosedByClient));
            // The gateway's own reason when it closed first (the client's echo of it is no reason), else the client's.
            // A socket whose send failed (Lost) exchanged no close frame either, whatever status its reason carries.
            if (!ReferenceEquals(decided, CloseReason.Lost) && (decided?.Status ?? socket.CloseStatus) is { } status)
            {
                var description = decided?.Description ?? Escaped(socket.CloseStatusDescription);
                if (string.IsNullOrEmpty(description))
                {
                    ChatLog.ConnectionClosedWithoutReason(logger, connection.Id, user.UserId, status);
                }
                else
                {
                    ChatLog.ConnectionClosed(logger, connection.Id, user.UserId, status, description);
                }
            }
            else
            {
                ChatLog.ConnectionLost(logger, connection.Id, user.UserId);
            }
        }
    }

    /// <summary>
    /// The client's close reason as a log line may show it: its control characters escaped (<c>\n</c>,
    /// <c>\u001b</c>), so that it cannot forge a line or drive the terminal of whoever reads the log.
    /// </summary>
    internal static string? Escaped(string? reason)
    {
        if (reason is null || !reason.Any(char.IsControl))
        {
            return reason;
        }
        var escaped = new System.Text.StringBuilder(reason.Length + 16);
        foreach (var c in reason)
        {
            _ = c switch
            {
                '\n' => escaped.Append(@"\n"),
                '\r' => escaped.Append(@"\r"),
                '\t' => escaped.Append(@"\t"),
                _ when char.IsControl(c) => escaped.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"),
                _ => escaped.Append(c),
            };
        }
        return escaped.ToString();
    }

    /// <summary>
    /// Subscribes the connection to the user's conversations, then replays what they missed and sends
    /// <c>ready</c>. Subscribing first means a message committed meanwhile is either in the replay or held for
    /// live delivery; the gate drops the held copies of what the replay already sent. False when it failed, or when
    /// the client closed (or its socket failed) before the catch-up was done.
    /// </summary>
    private async Task<bool> TryStartAsync(ChatConnection connection, WebSocket socket, bool catchup, CancellationToken aborted)
    {
        try
        {
            IReadOnlyList<long> conversationIds;
            do
            {
                // A membership change committed while this runs makes TrySubscribe refuse the list: read it again.
                var membershipVersion = registry.MembershipVersion(connection.UserId);
                conversationIds = await ReadAsync(ct => conversations.ActiveConversationIdsAsync(connection.UserId, ct), aborted);
                if (registry.TrySubscribe(connection, conversationIds, membershipVersion))
                {
                    break;
                }
            }
            while (true);

            var limit = catchup ? _limits.CatchupLimitPerConversation : 0;
            // Read a few conversations at a time, each group in a snapshot of its own (a conversation's messages and
            // its lastSeq, which the gate uses, still come from one): held whole, the replay of a user in thousands
            // of conversations was hundreds of megabytes for as long as the client took to read it.
            var groups = await ReadAsync(ct => messages.CatchupGroupsAsync(connection.UserId, conversationIds, limit, CatchupMessagesPerRead, ct), aborted);
            var states = new List<ConversationState>(conversationIds.Count);
            var hasMore = new HashSet<long>();
            foreach (var ids in groups)
            {
                var replay = await ReadAsync(ct => messages.CatchupAsync(connection.UserId, ids, limit, ct), aborted);
                states.AddRange(replay.Conversations);
                foreach (var group in replay.Messages.GroupBy(m => m.ConversationId))
                {
                    var count = 0;
                    foreach (var message in group)
                    {
                        if (++count > limit)
                        {
                            hasMore.Add(group.Key);
                            break;
                        }
                        if (ClientLeft(socket))
                        {
                            return false;
                        }
                        await connection.SendPacedAsync(new OutboundFrame(FrameWriter.Message(message, isCatchup: true), message.ConversationId, message.Seq), aborted);
                    }
                }
            }

            // ready closes the replay, which may have filled its half of the queue: room for it is waited for before
            // the device goes live, not after. Live, a device whose client closed meanwhile (or that the gateway chose
            // to close: too many frames held, token expiry, shutdown) would have been announced "online" and then
            // "offline", and a client that sent its close would still have received its ready (protocol §11). The
            // status is not known yet (MarkLive reads it): the room is for the longest status name.
            var entries = states.ConvertAll(c =>
                new ReadyConversation(c.ConversationId, c.LastSeq, c.UnreadCount, hasMore.Contains(c.ConversationId), c.LastChangeSeq));
            var ready = FrameWriter.Ready(PresenceStatus.Online, entries);
            await connection.WaitForRoomAsync(ready.Length + ReadyStatusSlack, aborted);

            // The device now counts for its user's status, before the client hears ready and may ask the HTTP API.
            // What is announced is the status the registry holds now: "away" set on another device meanwhile
            // stays, and a first device that failed before this point was never announced. One whose client
            // closed meanwhile is not made live either: a browser that closes keeps reading until the server's
            // close, so the replay ran to its end, and the user's contacts would see "online" and then "offline".
            // socket.State does not tell of a close the gateway decided: the writer sends its close frame only
            // once the frames before it are out, and a client that stopped reading holds them.
            if (ClientLeft(socket) || connection.CloseReason is not null)
            {
                return false;
            }
            // Read as it goes live, under the lock that orders the user's changes: each later one reaches this
            // device after its ready (held until the gate opens), so it starts from the user's status and follows it.
            var status = presence.MarkLive(connection);

            // Into the room waited for above, without waiting again: nothing else is queued meanwhile. Live frames are
            // held until the gate opens below, and acks, errors and sync replies come from the receive loop, which
            // starts after this. (Were one queued all the same, Send checks the whole queue, of which this room is
            // half.)
            connection.Send(status == PresenceStatus.Online ? ready : FrameWriter.Ready(status, entries));

            // Everything committed up to the replay's snapshot has now been sent, or is announced by hasMore.
            connection.OpenGate(states.ToFrozenDictionary(c => c.ConversationId, c => c.LastSeq));
            return true;
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            // The client went away during catch-up.
            return false;
        }
        catch (Exception e) when (RequestDatabase.CannotServe(e))
        {
            // Without the stack, and with a reason the client can act on: after a restart or a network blip every
            // reconnecting client of a database that cannot keep up comes here.
            ChatLog.CatchupFailedOnDatabase(logger, connection.Id, e.Message);
            connection.RequestClose(CloseReason.DatabaseUnavailable);
            return false;
        }
        catch (Exception e)
        {
            ChatLog.CatchupFailed(logger, e, connection.Id);
            connection.RequestClose(CloseReason.InternalError);
            return false;
        }
    }

    /// <summary>
    /// One database read of the catch-up, bounded by <c>Chat:Database:RequestTimeout</c> as the handshake's profile
    /// is. Unbounded, a connection waited after its <c>welcome</c> for as long as the database did: when a reconnect
    /// storm held every connection of the shared pool, Npgsql's pool wait (15 s) ran once per retry and the client
    /// heard 1011 about a minute later; behind a locked table it waited for the lock, with no <c>ready</c> and no
    /// close. Each read has its own deadline: the replay between them goes at the client's pace, not the database's.
    /// </summary>
    private Task<T> ReadAsync<T>(Func<CancellationToken, Task<T>> read, CancellationToken aborted) =>
        RequestDatabase.WithinAsync(read, _requestTimeout, aborted);

    /// <summary>
    /// The client sent its close, or the socket failed, while the catch-up ran: the read of the first frame, which
    /// runs beside the catch-up, has seen it. A frame the client sent early leaves the socket open.
    /// </summary>
    private static bool ClientLeft(WebSocket socket) => socket.State != WebSocketState.Open;

    // A zero-byte read waits for the next frame without holding a buffer while the socket is idle, and processes the
    // control frames before it (the keep-alive's pongs among them).
    // A ValueTask, awaited exactly once, rather than a Task: an idle socket's pending read allocates nothing more.
    private static ValueTask<ValueWebSocketReceiveResult> ReadHeaderAsync(WebSocket socket) =>
        socket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);

    private static async Task IgnoreFailure(ValueTask<ValueWebSocketReceiveResult> read)
    {
        try
        {
            await read;
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The socket is gone; the session is ending anyway.
        }
    }

    /// <param name="nextHeader">The read of the first frame's header, started before the catch-up.</param>
    private async Task ReceiveLoopAsync(ChatConnection connection, WebSocket socket, CloseGate gate, ValueTask<ValueWebSocketReceiveResult> nextHeader, CloseReasonStream? transport, CancellationToken aborted)
    {
        var limiter = new FrameRateLimiter(_limits, time);
        ValueTask<ValueWebSocketReceiveResult>? pending = nextHeader;
        try
        {
            while (true)
            {
                // Taken out of `pending` before it is awaited: a ValueTask is awaited once, and a failing read must
                // not be awaited again by the finally block below.
                var read = pending ?? ReadHeaderAsync(socket);
                pending = null;
                var header = await read;
                if (header.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }
                // A protocol violation ends reading: the rest of the offending message is never read or buffered,
                // the writer sends the close frame, and the socket goes when the close handshake ends or times out.
                if (header.MessageType == WebSocketMessageType.Binary)
                {
                    Close(connection, CloseReason.BinaryFrame);
                    return;
                }

                // A client that sends without reading the answers is read no faster than it reads them: its own
                // acks and errors then fill at most half its queue, and it is not closed as a slow consumer.
                if (connection.CloseReason is null)
                {
                    await connection.WaitForRoomAsync(0, aborted);
                }

                var (buffer, length) = await ReadMessageAsync(socket, header);
                try
                {
                    if (length < 0)
                    {
                        if (length == TooLarge)
                        {
                            Close(connection, CloseReason.FrameTooLarge);
                        }
                        return;
                    }
                    // Once the gateway is closing this socket, frames still arriving are not acted on.
                    if (connection.CloseReason is not null)
                    {
                        continue;
                    }
                    var payload = buffer.AsMemory(0, length);
                    // The WebSocket library checks text as it arrives and closes the socket itself (see the catch
                    // below); this holds for a socket that does not.
                    if (!Utf8.IsValid(payload.Span))
                    {
                        Close(connection, CloseReason.InvalidUtf8);
                        return;
                    }
                    if (!gate.TryBeginFrame())
                    {
                        continue;
                    }
                    try
                    {
                        // The next header is read while this frame is handled: a frame held up by the database, or
                        // a sync sent at a slow client's pace, would otherwise leave the client's pongs unread for
                        // longer than the keep-alive allows, and a client that answered would be dropped.
                        pending = ReadHeaderAsync(socket);
                        await HandleFrameAsync(connection, limiter, payload, aborted);
                    }
                    finally
                    {
                        gate.EndFrame();
                    }
                }
                finally
                {
                    if (buffer.Length > 0)
                    {
                        ArrayPool<byte>.Shared.Return(buffer);
                    }
                }
            }
        }
        catch (WebSocketException) when (transport?.LibraryClose is { } reason)
        {
            // The library found the violation before the gateway saw the bytes (invalid UTF-8, a malformed frame)
            // and has sent the close frame itself: the socket did not fail, the gateway closed it for a reason.
            Close(connection, reason);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or ChannelClosedException)
        {
            ChatLog.SocketFailed(logger, e, connection.Id);
        }
        finally
        {
            if (pending is { } left)
            {
                // Left by a failure while a frame was handled: observed, so that its end when the socket goes is
                // not an unobserved exception.
                _ = IgnoreFailure(left);
            }
            connection.ReadingEnded();
        }
    }

    private const int ClosedWhileReading = -2;
    private const int TooLarge = -1;

    /// <summary>
    /// Reads the rest of a message into a pooled buffer that grows up to <c>MaxFrameBytes</c> + 1 and no further,
    /// so an oversize message, fragmented or not, is refused without buffering past the limit.
    /// </summary>
    private async Task<(byte[] Buffer, int Length)> ReadMessageAsync(WebSocket socket, ValueWebSocketReceiveResult header)
    {
        if (header.EndOfMessage)
        {
            return ([], 0);
        }
        var limit = _limits.MaxFrameBytes + 1;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(InitialReceiveBufferBytes, limit));
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (length >= limit)
                {
                    return (buffer, TooLarge);
                }
                var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, limit));
                buffer.AsSpan(0, length).CopyTo(larger);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = larger;
            }
            var room = Math.Min(buffer.Length, limit) - length;
            var result = await socket.ReceiveAsync(buffer.AsMemory(length, room), CancellationToken.None);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return (buffer, ClosedWhileReading);
            }
            length += result.Count;
            if (length > _limits.MaxFrameBytes)
            {
                return (buffer, TooLarge);
            }
            if (result.EndOfMessage)
            {
                return (buffer, length);
            }
        }
    }

    private async Task HandleFrameAsync(ChatConnection connection, FrameRateLimiter limiter, ReadOnlyMemory<byte> payload, CancellationToken aborted)
    {
        var read = _reader.Read(payload);
        if (read.Error is { } error)
        {
            metrics.FramesReceived.Add(error.FrameType ?? "invalid");
            // Answering garbage costs what answering a frame does: a client that floods it is limited like any other.
            var unreadable = limiter.CheckUnreadable();
            if (unreadable.Outcome == RateOutcome.Allowed)
            {
                Refuse(connection, error);
            }
            else
            {
                Limit(connection, unreadable, error);
            }
            return;
        }

        var frame = read.Frame!;
        metrics.FramesReceived.Add(frame.Type);
        var rate = limiter.Check(frame);
        if (rate.Outcome != RateOutcome.Allowed)
        {
            // The error only names the frame here; Limit writes its message.
            Limit(connection, rate, FrameError.About(frame, ErrorCodes.RateLimited, string.Empty));
            return;
        }

        try
        {
            await dispatcher.DispatchAsync(connection, frame, aborted);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // The socket is gone; nobody is left to answer.
        }
        catch (ChannelClosedException)
        {
            // A sync reply stopped because the socket is closing, or will once this frame is done (shutdown, token
            // expiry): the close says what happened, and the client syncs again from the last seq it holds.
        }
        catch (MessageRefusedException e)
        {
            // The database refused a value of this message that the reader let through: retrying cannot help.
            ChatLog.HandlerFailed(logger, e, connection.Id, frame.Type);
            connection.SendError(FrameError.About(
                frame, ErrorCodes.BadRequest, "The server cannot store a value of this frame; do not retry it unchanged."));
        }
        catch (TimeoutException e)
        {
            // A sync, read, edit or delete the database did not serve within Chat:Database:RequestTimeout (the pool
            // held by others, a lock): retrying it is safe (protocol §7), and the connection goes on with its next frame.
            ChatLog.HandlerFailedOnDatabase(logger, connection.Id, frame.Type, e.Message);
            connection.SendError(FrameError.About(frame, ErrorCodes.Internal, "The database did not answer in time; it is safe to retry."));
        }
        catch (Exception e)
        {
            // The database stayed down through the retries, or a bug: the client hears "internal" and may retry
            // with the same clientMessageId; nothing was acknowledged, and the connection stays usable.
            if (DatabaseResilience.IsUnavailable(e))
            {
                ChatLog.HandlerFailedOnDatabase(logger, connection.Id, frame.Type, e.Message);
            }
            else
            {
                ChatLog.HandlerFailed(logger, e, connection.Id, frame.Type);
            }
            connection.SendError(FrameError.About(
                frame, ErrorCodes.Internal, "The server could not complete this request; it is safe to retry."));
        }
    }

    /// <summary>
    /// A frame the rate limiter did not allow: closes a flooder, or answers <c>rate_limited</c> naming the frame as
    /// <paramref name="about"/> does (its type, target and key, when it had them).
    /// </summary>
    private void Limit(ChatConnection connection, RateDecision rate, FrameError about)
    {
        if (rate.Outcome == RateOutcome.Flooding)
        {
            Close(connection, CloseReason.RateLimitExceeded);
            return;
        }
        var retryAfterMs = Math.Max(1, (long)Math.Ceiling(rate.RetryAfter.TotalMilliseconds));
        Refuse(connection, about with
        {
            Code = ErrorCodes.RateLimited,
            Message = $"Too many frames: wait {retryAfterMs} ms before sending this kind of frame again.",
            RetryAfterMs = retryAfterMs,
        });
    }

    private void Refuse(ChatConnection connection, FrameError error)
    {
        ChatLog.FrameRefused(logger, connection.Id, error.Code, error.Message);
        connection.SendError(error);
    }

    private void Close(ChatConnection connection, CloseReason reason)
    {
        if (connection.RequestClose(reason))
        {
            ChatLog.ClosingConnection(logger, connection.Id, connection.UserId, reason.Description);
        }
    }

    /// <summary>Unregisters the connection and tells the others what its departure changed.</summary>
    private async Task LeaveAsync(ChatConnection connection)
    {
        var departure = presence.Unregister(connection);
        // Typing stopped in a conversation whose membership change is being applied is announced after the change,
        // as a lapse is (TypingSweeper): now, it would reach a member just removed, who still receives the
        // conversation until the change is applied, after their "left".
        if (fences.AnyFenced)
        {
            await fences.WaitOpenAsync(connection.Typing.Conversations);
        }
        var now = time.GetUtcNow().UtcDateTime;
        connection.Typing.Close(conversationId =>
            TypingHandler.Publish(registry, publisher, connection, conversationId, isTyping: false, now));
        if (departure.WentOffline)
        {
            try
            {
                await users.SetLastSeenAsync(connection.UserId, CancellationToken.None);
            }
            catch (Exception e)
            {
                ChatLog.LastSeenFailed(logger, e, connection.UserId);
            }
        }
    }

    /// <summary>Flushes and closes: the writer sends what is queued and the close frame; a peer that does not finish in time is aborted.</summary>
    private async Task CloseAsync(ChatConnection connection, WebSocket socket, Task sending, Task receiving)
    {
        // Unless the gateway already chose a reason (shutdown, slow consumer, a protocol violation), this is the
        // answer to the client's own close.
        connection.RequestClose(CloseReason.Normal);

        var both = Task.WhenAll(sending, receiving);
        if (await Task.WhenAny(both, Task.Delay(_limits.CloseTimeout)) != both)
        {
            ChatLog.CloseTimedOut(logger, connection.Id);
            socket.Abort();
        }
        try
        {
            await both;
        }
        catch (Exception e)
        {
            // A peer that vanished mid-send: nothing more to deliver to it.
            ChatLog.SocketFailed(logger, e, connection.Id);
        }
    }

    /// <summary>
    /// Makes a close decided outside the receive loop (shutdown, token expiry) wait for the frame in hand: a
    /// message being stored is committed and acknowledged (or not stored at all) before the socket is closed, and
    /// no frame is started after that. The first reason wins.
    /// </summary>
    /// <remarks>
    /// One lives as long as each connection, so it holds its two references and locks on itself: a
    /// <see cref="Lock"/> and a closure over the connection would add about 170 bytes to every idle socket. The
    /// class is private, so nothing else can lock on it.
    /// </remarks>
    private sealed class CloseGate(ChatSessionRunner runner, ChatConnection connection)
    {
        private bool _handling;
        private bool _sealed;
        private CloseReason? _stopping;

        public void Close(CloseReason reason)
        {
            lock (this)
            {
                if (_stopping is not null || _sealed)
                {
                    return;
                }
                _stopping = reason;
                if (!_handling)
                {
                    Act(reason);
                }
                else
                {
                    // The frame in hand is finished, but a sync it is sending to a client that stopped reading
                    // gives up instead of waiting for it (until the keep-alive's timeout, or for good).
                    connection.EndPacing();
                }
            }
        }

        /// <summary>
        /// The session is ending: a close asked for from now on changes nothing, and one still waiting for the frame
        /// in hand is asked for now, so that the reason read next is the one the socket closes with.
        /// </summary>
        public void Seal()
        {
            lock (this)
            {
                _sealed = true;
                if (_stopping is { } reason && _handling)
                {
                    Act(reason);
                }
            }
        }

        public bool TryBeginFrame()
        {
            lock (this)
            {
                if (_stopping is not null || _sealed)
                {
                    return false;
                }
                _handling = true;
                return true;
            }
        }

        public void EndFrame()
        {
            lock (this)
            {
                _handling = false;
                if (_stopping is { } reason)
                {
                    Act(reason);
                }
            }
        }

        // Shutdown closes every socket at once: one log line for the gateway, not one per socket.
        private void Act(CloseReason reason)
        {
            if (ReferenceEquals(reason, CloseReason.ServerShutdown))
            {
                connection.RequestClose(reason);
            }
            else
            {
                runner.Close(connection, reason);
            }
        }
    }
}
