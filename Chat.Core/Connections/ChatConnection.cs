using System.Net.WebSockets;
using System.Threading.Channels;
using Chat.Core.Metrics;
using Chat.Core.Protocol;

namespace Chat.Core.Connections;

/// <summary>
/// One client socket: who it belongs to, what it is subscribed to, and its bounded send queue drained by a
/// single writer (see <see cref="RunSendLoopAsync"/>). Producers never wait: when the queue is full, in frames or
/// in bytes, the connection is closed as a slow consumer instead of holding anyone else up.
/// </summary>
/// <remarks>
/// The writer is not a loop parked on the queue: a producer that finds it stopped schedules it on the thread pool,
/// and it stops again when the queue is empty. An idle connection therefore holds no writer state at all, and
/// queueing takes no lock. (A bounded channel took a lock on every write and read; at 2,000 msg/s a seventh of
/// the gateway's CPU was spent spinning on it, and an unbounded one keeps a 1.4 KB segment per idle connection.)
/// </remarks>
public sealed class ChatConnection : IThreadPoolWorkItem
{
    private readonly WebSocket _socket;
    private readonly FrameQueue _queue = new();
    private readonly int _maxQueuedBytes;
    private readonly int _maxQueuedFrames;
    private long _queuedBytes;
    private int _queuedFrames;
    private CloseReason? _closeReason;
    private readonly TaskCompletionSource _ending = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // 1 while the writer is scheduled or running (at most one runs), 0 while it is stopped; it stays 1 once the
    // writer has finished for good. Nothing is sent before RunSendLoopAsync starts it.
    private int _writing;
    private volatile bool _started;
    private readonly TaskCompletionSource _writerFinished = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Until catch-up has been queued, live frames wait here so that the client sees catch-up first and
    // nothing twice. Flipped to false once, under the lock.
    private volatile bool _gated = true;
    private readonly List<OutboundFrame> _held = [];
    private int _heldBytes;
    private IReadOnlyDictionary<long, long>? _replayedUpTo;

    // A paced sender waiting for the writer to make room, whether the writer has stopped for good, and whether a
    // close is coming that paced senders must not hold off.
    private TaskCompletionSource? _spaceWaiter;
    private volatile bool _writerDone;
    private volatile bool _pacingEnded;

    private readonly ChatMetrics? _metrics;

    public ChatConnection(long id, ConnectedUser user, WebSocket socket, int queueCapacity, int maxQueuedBytes, ChatMetrics? metrics = null)
    {
        Id = id;
        User = user;
        _socket = socket;
        _maxQueuedFrames = queueCapacity;
        _maxQueuedBytes = maxQueuedBytes;
        _metrics = metrics;
        Typing = new TypingState(user.UserId);
    }

    public long Id { get; }

    public ConnectedUser User { get; }

    public long UserId => User.UserId;

    /// <summary>Why the gateway is closing this connection, once it is; null while it is open.</summary>
    public CloseReason? CloseReason => Volatile.Read(ref _closeReason);

    /// <summary>
    /// Completes when the session should end: the gateway decided to close this connection (which includes its
    /// writer finishing), or its reader stopped (<see cref="ReadingEnded"/>). One task for all three, so that an
    /// open session waits on it alone rather than on a <c>Task.WhenAny</c> kept for its whole life; and it wakes
    /// on the decision rather than on the writer, which may be stuck sending to a peer that stopped reading.
    /// </summary>
    public Task Ending => _ending.Task;

    /// <summary>Tells the session that nothing more will be read: the client closed, the socket failed, or a frame broke the protocol.</summary>
    public void ReadingEnded() => _ending.TrySetResult();

    /// <summary>Conversations this connection receives. Guarded by the registry's lock.</summary>
    internal HashSet<long> Subscriptions { get; } = [];

    /// <summary>The status this connection last set, and when (a registry-wide counter). Guarded by the registry's lock.</summary>
    internal PresenceStatus Presence { get; set; } = PresenceStatus.Online;

    internal long PresenceVersion { get; set; }

    /// <summary>Past its catch-up: counts for its user's status. Guarded by the registry's lock.</summary>
    internal bool IsLive { get; set; }

    /// <summary>
    /// Has been sent a <c>presence</c> frame about its own user: from then on it hears of its own changes too
    /// (<see cref="IChatPublisher.PublishToOwnDevices"/>). Guarded by the registry's lock.
    /// </summary>
    internal bool HeardOwnStatus { get; set; }

    /// <summary>Conversations this connection said it is typing in, with when that lapses unless renewed.</summary>
    internal TypingState Typing { get; }

    /// <summary>
    /// Queues a live frame (a broadcast). Held back while catch-up is in progress. True when it was queued now;
    /// false when it was held (<see cref="OpenGate"/> counts it as delivered if it queues it then), or dropped: the
    /// connection is closing, or catch-up already sent it.
    /// </summary>
    public bool Enqueue(OutboundFrame frame)
    {
        if (_gated)
        {
            lock (_held)
            {
                if (_gated)
                {
                    // Held frames are queued when the gate opens, into the half of the queue a catch-up leaves free.
                    // A frame larger than that still waits alone, as it would go alone into an empty queue (Write).
                    if (_held.Count >= _maxQueuedFrames - MaxPacedFrames
                        || (_held.Count > 0 && _heldBytes + frame.Payload.Length > _maxQueuedBytes - MaxPacedBytes))
                    {
                        RequestClose(Connections.CloseReason.SlowConsumer);
                    }
                    else
                    {
                        _held.Add(frame);
                        _heldBytes += frame.Payload.Length;
                    }
                    return false;
                }
            }
        }
        return !AlreadyReplayed(frame) && Write(frame);
    }

    /// <summary>Queues a frame addressed to this connection alone (welcome, ack, error); never held back.</summary>
    public void Send(OutboundFrame frame) => Write(frame);

    /// <summary>Answers a frame with an <c>error</c>, counted by its code unless the connection is closing and drops it.</summary>
    public void SendError(FrameError error)
    {
        if (Write(FrameWriter.Error(error)))
        {
            _metrics?.FrameErrors.Add(error.Code);
        }
    }

    /// <summary>
    /// Queues a frame of a bulk reply (catch-up, sync) at the pace the client reads: waits for room in the queue,
    /// in frames and in bytes, instead of treating a long replay as a slow consumer. A bulk reply fills at most
    /// half the queue: the other half is kept for what is queued beside or after it without waiting (acks and
    /// live frames, the frames held during catch-up, <c>synced</c>), which would otherwise find the queue full
    /// of the reply and close a client that reads at a fine pace as a slow consumer.
    /// Throws <see cref="ChannelClosedException"/> when the connection closes meanwhile.
    /// </summary>
    public async ValueTask SendPacedAsync(OutboundFrame frame, CancellationToken cancellationToken)
    {
        var length = frame.Payload.Length;
        await WaitForRoomAsync(length, cancellationToken);
        if (CloseReason is not null)
        {
            throw new ChannelClosedException();
        }
        Interlocked.Add(ref _queuedBytes, length);
        Interlocked.Increment(ref _queuedFrames);
        _queue.Enqueue(frame);
        ScheduleWriter();
    }

    /// <summary>
    /// Waits until a frame of <paramref name="length"/> bytes fits in the half of the queue that paced frames may
    /// fill; at once when it does. The receive loop waits here before it reads the next frame, so that a client
    /// that sends faster than it reads the answers is read at the pace it reads (its acks and errors fill at most
    /// half its queue) instead of being closed as a slow consumer.
    /// Throws <see cref="ChannelClosedException"/> when the writer has finished for good, or when a close was asked
    /// for (or announced, <see cref="EndPacing"/>) while it waited: a catch-up or sync paced by a stalled client
    /// must not hold off a shutdown, a token expiry or a slow-consumer close.
    /// </summary>
    public async ValueTask WaitForRoomAsync(int length, CancellationToken cancellationToken)
    {
        while (!HasRoomFor(length))
        {
            var space = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            // A full fence: the flags below must be read after the waiter is published, or a close that swapped out
            // the previous waiter in between would be missed, and this one never woken.
            Interlocked.Exchange(ref _spaceWaiter, space);
            // The writer may have drained, or a close been asked for, between the check and publishing the waiter:
            // look again.
            if (_writerDone || CloseReason is not null || _pacingEnded)
            {
                throw new ChannelClosedException();
            }
            if (HasRoomFor(length))
            {
                break;
            }
            await space.Task.WaitAsync(cancellationToken);
        }
        if (_writerDone)
        {
            throw new ChannelClosedException();
        }
    }

    private int MaxPacedFrames => Math.Max(1, _maxQueuedFrames / 2);

    private int MaxPacedBytes => _maxQueuedBytes / 2;

    // A frame larger than the byte bound still goes when the queue is empty, or it could never be sent.
    private bool HasRoomFor(int length)
    {
        var queued = Interlocked.Read(ref _queuedBytes);
        return Volatile.Read(ref _queuedFrames) < MaxPacedFrames && (queued == 0 || queued + length <= MaxPacedBytes);
    }

    /// <summary>
    /// Ends catch-up. <paramref name="replayedUpTo"/> is, per conversation, the last seq that catch-up covered
    /// (sent, or left for the client to sync when it hit its cap). A message at or below it is dropped whenever
    /// it is published, held or not: its commit preceded the catch-up snapshot even if its publication comes
    /// after the gate opens. The held frames are then released in the order they arrived, and those queued are
    /// counted as deliveries: the fan-out that held them did not count them.
    /// </summary>
    public void OpenGate(IReadOnlyDictionary<long, long> replayedUpTo)
    {
        lock (_held)
        {
            _replayedUpTo = replayedUpTo;
            var delivered = 0;
            foreach (var frame in _held)
            {
                if (!AlreadyReplayed(frame) && Write(frame))
                {
                    delivered++;
                }
            }
            if (delivered > 0)
            {
                _metrics?.Deliveries.Add(delivered);
            }
            _held.Clear();
            _heldBytes = 0;
            _gated = false;
        }
    }

    private bool AlreadyReplayed(in OutboundFrame frame) =>
        frame.Seq != 0
        && _replayedUpTo is { } replayed
        && replayed.TryGetValue(frame.ConversationId, out var upTo)
        && frame.Seq <= upTo;

    /// <summary>Queues the frame; false when the connection is closing, or closes now as a slow consumer, and drops it.</summary>
    private bool Write(OutboundFrame frame)
    {
        // Once closing, the queue takes nothing more: the writer sends what was queued before, then the close frame.
        if (CloseReason is not null)
        {
            return false;
        }
        var length = frame.Payload.Length;
        var queued = Interlocked.Add(ref _queuedBytes, length);
        // A frame larger than the byte bound still goes into an empty queue: one message may be as large as
        // Chat:Limits:MaxFrameBytes lets a sender make it, and a reader that keeps up must not be closed for it.
        var overBytes = queued > _maxQueuedBytes && queued != length;
        var overFrames = Interlocked.Increment(ref _queuedFrames) > _maxQueuedFrames;
        if (overBytes || overFrames)
        {
            Interlocked.Add(ref _queuedBytes, -length);
            Interlocked.Decrement(ref _queuedFrames);
            RequestClose(Connections.CloseReason.SlowConsumer);
            return false;
        }
        _queue.Enqueue(frame);
        ScheduleWriter();
        return true;
    }

    /// <summary>
    /// A close is coming once the frame in hand is done (shutdown, token expiry): from now on a bulk reply that
    /// would have to wait for the client to read gives up instead (<see cref="ChannelClosedException"/>), so that a
    /// client that stopped reading in the middle of a sync cannot hold the close off. Frames that fit still go.
    /// </summary>
    public void EndPacing()
    {
        _pacingEnded = true;
        Interlocked.Exchange(ref _spaceWaiter, null)?.TrySetResult();
    }

    /// <summary>Bytes queued and not yet written to the socket (for tests and diagnostics).</summary>
    internal long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    /// <summary>
    /// Asks for the socket to be closed with <paramref name="reason"/>: the queue stops taking frames, the writer
    /// sends what is queued (all of it, unless the client is a slow consumer) and then the close frame.
    /// The first reason wins.
    /// </summary>
    public bool RequestClose(CloseReason reason)
    {
        if (Interlocked.CompareExchange(ref _closeReason, reason, null) is not null)
        {
            return false;
        }
        _ending.TrySetResult();
        // A catch-up or sync waiting for room stops waiting: nothing more of it will be sent.
        Interlocked.Exchange(ref _spaceWaiter, null)?.TrySetResult();
        // The writer must run once more, to send the close frame.
        ScheduleWriter();
        return true;
    }

    /// <summary>
    /// Starts the writer: from now on it sends what is queued, in order, and, once <see cref="RequestClose"/> was
    /// called, the close frame. The task completes when the writer has finished for good; it faults when sending
    /// failed (the peer is gone).
    /// </summary>
    public Task RunSendLoopAsync()
    {
        _started = true;
        ScheduleWriter();
        return _writerFinished.Task;
    }

    private void ScheduleWriter()
    {
        // A producer that links a frame, or the close request, after the writer stopped starts it again; one that
        // finds it running leaves the frame to it (DrainAsync looks again after stopping).
        if (_started && Interlocked.Exchange(ref _writing, 1) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    void IThreadPoolWorkItem.Execute() => _ = DrainAsync();

    /// <summary>The single writer: sends until the queue is empty, then stops, or closes the socket when asked to.</summary>
    private async Task DrainAsync()
    {
        try
        {
            while (true)
            {
                while (_queue.TryDequeue(out var frame))
                {
                    Interlocked.Add(ref _queuedBytes, -frame.Payload.Length);
                    Interlocked.Decrement(ref _queuedFrames);
                    Interlocked.Exchange(ref _spaceWaiter, null)?.TrySetResult();
                    // A slow consumer's backlog is dropped: it is closed because it cannot take it.
                    if (ReferenceEquals(CloseReason, Connections.CloseReason.SlowConsumer))
                    {
                        continue;
                    }
                    await _socket.SendAsync(frame.Payload, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
                }

                if (CloseReason is { } reason)
                {
                    if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                    {
                        await _socket.CloseOutputAsync(reason.Status, reason.Description, CancellationToken.None);
                    }
                    Finish(null);
                    return;
                }

                // Stop, then look again: a producer that linked its frame (or a close request) before this saw
                // the writer running and left it here; one after this starts the writer itself.
                Interlocked.Exchange(ref _writing, 0);
                if (!_queue.HasLinked && CloseReason is null)
                {
                    return;
                }
                if (Interlocked.Exchange(ref _writing, 1) != 0)
                {
                    return;
                }
            }
        }
        catch (Exception e)
        {
            Finish(e);
        }
    }

    private void Finish(Exception? failure)
    {
        // Nothing will be sent any more: producers must stop, a paced sender must not wait. _writing stays 1, so
        // the writer is never scheduled again.
        Volatile.Write(ref _writing, 1);
        _writerDone = true;
        // After the close frame went out the reason is already set; a send that failed means the socket is gone.
        RequestClose(failure is null ? Connections.CloseReason.Normal : Connections.CloseReason.Lost);
        Interlocked.Exchange(ref _spaceWaiter, null)?.TrySetResult();
        if (failure is null)
        {
            _writerFinished.TrySetResult();
        }
        else
        {
            _writerFinished.TrySetException(failure);
        }
    }
}

/// <summary>
/// Where a connection is typing. Set by its receive loop, lapsed by the typing sweeper, emptied when it closes;
/// guarded by a lock because those run on different threads. Each change is announced while the lock is held, so
/// the others see one connection's typing in the order its state changed: a lapse the sweeper found cannot be
/// announced after a renewal that arrived behind it and leave the user shown as stopped mid-sentence.
/// </summary>
/// <remarks>
/// The lock is the user's, shared by all their connections, because a stop is announced only when no other device of
/// theirs types there (protocol §9): with a lock per connection, another device's start could land between a stop's
/// look at the others and its announcement, and reach the others first; they would then see the user stopped while
/// that device types, until its next renewal. Users are spread over a fixed set of locks, so that a connection needs
/// nothing from the registry before its first frame nor after it has left, and typing allocates nothing; users that
/// share one only wait for each other's announcement.
/// </remarks>
internal sealed class TypingState(long userId)
{
    private static readonly Lock[] UserLocks = [.. Enumerable.Range(0, 256).Select(_ => new Lock())];

    private readonly Lock _lock = UserLocks[(int)((ulong)userId % (ulong)UserLocks.Length)];

    // Changed under the lock; concurrent so that a message's sender can find which of their devices type without it.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, long> _until = [];

    // Set once the connection has left: a typing frame still being handled then announces nothing, since no sweeper
    // would ever lapse it.
    private bool _closed;

    /// <summary>Records typing (until <paramref name="until"/>, in timestamp ticks) or its end, and announces it.</summary>
    public void Announce(long conversationId, bool isTyping, long until, Action announce)
    {
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }
            if (isTyping)
            {
                _until[conversationId] = until;
            }
            else
            {
                _until.TryRemove(conversationId, out _);
            }
            announce();
        }
    }

    /// <summary>Ends typing in the conversation; announces the stop only when the connection was typing there.</summary>
    public void Stop(long conversationId, Action announce)
    {
        lock (_lock)
        {
            if (_until.TryRemove(conversationId, out _))
            {
                announce();
            }
        }
    }

    /// <summary>The conversations the connection is typing in now (a copy).</summary>
    public IEnumerable<long> Conversations => _until.Keys;

    /// <summary>Whether the connection is typing in the conversation (a lapse the sweeper has not found yet included).</summary>
    public bool IsTypingIn(long conversationId) => _until.ContainsKey(conversationId);

    /// <summary>The connection leaves: ends and announces all its typing, and takes no more.</summary>
    public void Close(Action<long> announce)
    {
        lock (_lock)
        {
            _closed = true;
            StopExpired(now: null, announce);
        }
    }

    /// <summary>
    /// Ends and announces the typing that lapsed by <paramref name="now"/>; all of it when null. Typing in a
    /// conversation that <paramref name="later"/> names is left as it is, for a later call.
    /// </summary>
    public void StopExpired(long? now, Action<long> announce, Func<long, bool>? later = null)
    {
        lock (_lock)
        {
            List<long>? expired = null;
            foreach (var (conversationId, until) in _until)
            {
                if ((now is null || until <= now) && later?.Invoke(conversationId) != true)
                {
                    (expired ??= []).Add(conversationId);
                }
            }
            foreach (var conversationId in expired ?? [])
            {
                _until.TryRemove(conversationId, out _);
                announce(conversationId);
            }
        }
    }
}

/// <summary>The authenticated user behind a connection, as provisioned on connect.</summary>
public sealed record ConnectedUser(long UserId, string ExternalId, string DisplayName, string? AvatarUrl);
