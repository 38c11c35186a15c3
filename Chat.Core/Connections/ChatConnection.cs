using System.Net.WebSockets;
using System.Threading.Channels;
using Chat.Core.Protocol;

namespace Chat.Core.Connections;

/// <summary>
/// One client socket: who it belongs to, what it is subscribed to, and its bounded send queue drained by a
/// single writer (<see cref="RunSendLoopAsync"/>). Producers never wait: when the queue is full, in frames or in
/// bytes, the connection is closed as a slow consumer instead of holding anyone else up.
/// </summary>
public sealed class ChatConnection
{
    private readonly WebSocket _socket;

    // Unbounded in the channel's eyes; bounded here, in frames and in bytes, by counting what is queued. A bounded
    // channel takes a lock on every write and every read, and the fan-out writes to a busy connection while its
    // writer reads: profiles showed a seventh of the gateway's CPU spinning on that lock. The single-reader
    // unbounded channel reads without a lock.
    private readonly Channel<OutboundFrame> _queue;
    private readonly int _maxQueuedBytes;
    private readonly int _maxQueuedFrames;
    private long _queuedBytes;
    private int _queuedFrames;
    private CloseReason? _closeReason;
    private readonly TaskCompletionSource _closing = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Until catch-up has been queued, live frames wait here so that the client sees catch-up first and
    // nothing twice. Flipped to false once, under the lock.
    private volatile bool _gated = true;
    private readonly List<OutboundFrame> _held = [];
    private IReadOnlyDictionary<long, long>? _replayedUpTo;

    // A paced sender waiting for the writer to make room, and whether the writer has stopped for good.
    private TaskCompletionSource? _spaceWaiter;
    private volatile bool _writerDone;

    public ChatConnection(long id, ConnectedUser user, WebSocket socket, int queueCapacity, int maxQueuedBytes)
    {
        Id = id;
        User = user;
        _socket = socket;
        _maxQueuedFrames = queueCapacity;
        _maxQueuedBytes = maxQueuedBytes;
        _queue = Channel.CreateUnbounded<OutboundFrame>(new UnboundedChannelOptions
        {
            SingleReader = true,
            SingleWriter = false,
        });
    }

    public long Id { get; }

    public ConnectedUser User { get; }

    public long UserId => User.UserId;

    /// <summary>Why the gateway is closing this connection, once it is; null while it is open.</summary>
    public CloseReason? CloseReason => Volatile.Read(ref _closeReason);

    /// <summary>
    /// Completes when the gateway decides to close this connection. The session wakes on it rather than on the
    /// writer, which may be stuck sending to a peer that stopped reading.
    /// </summary>
    public Task Closing => _closing.Task;

    /// <summary>Conversations this connection receives. Guarded by the registry's lock.</summary>
    internal HashSet<long> Subscriptions { get; } = [];

    /// <summary>The status this connection last set, and when (a registry-wide counter). Guarded by the registry's lock.</summary>
    internal PresenceStatus Presence { get; set; } = PresenceStatus.Online;

    internal long PresenceVersion { get; set; }

    /// <summary>Conversations this connection said it is typing in, with when that lapses unless renewed.</summary>
    internal TypingState Typing { get; } = new();

    /// <summary>Queues a live frame (a broadcast). Held back while catch-up is in progress.</summary>
    public void Enqueue(OutboundFrame frame)
    {
        if (_gated)
        {
            lock (_held)
            {
                if (_gated)
                {
                    if (_held.Count >= _maxQueuedFrames)
                    {
                        RequestClose(Connections.CloseReason.SlowConsumer);
                    }
                    else
                    {
                        _held.Add(frame);
                    }
                    return;
                }
            }
        }
        if (!AlreadyReplayed(frame))
        {
            Write(frame);
        }
    }

    /// <summary>Queues a frame addressed to this connection alone (welcome, ack, error); never held back.</summary>
    public void Send(OutboundFrame frame) => Write(frame);

    /// <summary>
    /// Queues a frame of a bulk reply (catch-up) at the pace the client reads: waits for room in the queue,
    /// in frames and in bytes, instead of treating a long replay as a slow consumer.
    /// Throws <see cref="ChannelClosedException"/> when the connection closes meanwhile.
    /// </summary>
    public async ValueTask SendPacedAsync(OutboundFrame frame, CancellationToken cancellationToken)
    {
        var length = frame.Payload.Length;
        while (!HasRoomFor(length))
        {
            var space = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _spaceWaiter, space);
            // The writer may have drained between the check and publishing the waiter: look again.
            if (_writerDone)
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
        Interlocked.Add(ref _queuedBytes, length);
        Interlocked.Increment(ref _queuedFrames);
        if (!_queue.Writer.TryWrite(frame))
        {
            Interlocked.Add(ref _queuedBytes, -length);
            Interlocked.Decrement(ref _queuedFrames);
            throw new ChannelClosedException();
        }
    }

    // A frame larger than the byte bound still goes when the queue is empty, or it could never be sent.
    private bool HasRoomFor(int length)
    {
        var queued = Interlocked.Read(ref _queuedBytes);
        return Volatile.Read(ref _queuedFrames) < _maxQueuedFrames && (queued == 0 || queued + length <= _maxQueuedBytes);
    }

    /// <summary>
    /// Ends catch-up. <paramref name="replayedUpTo"/> is, per conversation, the last seq that catch-up covered
    /// (sent, or left for the client to sync when it hit its cap). A message at or below it is dropped whenever
    /// it is published, held or not: its commit preceded the catch-up snapshot even if its publication comes
    /// after the gate opens. The held frames are then released in the order they arrived.
    /// </summary>
    public void OpenGate(IReadOnlyDictionary<long, long> replayedUpTo)
    {
        lock (_held)
        {
            _replayedUpTo = replayedUpTo;
            foreach (var frame in _held)
            {
                if (!AlreadyReplayed(frame))
                {
                    Write(frame);
                }
            }
            _held.Clear();
            _gated = false;
        }
    }

    private bool AlreadyReplayed(in OutboundFrame frame) =>
        frame.Seq != 0
        && _replayedUpTo is { } replayed
        && replayed.TryGetValue(frame.ConversationId, out var upTo)
        && frame.Seq <= upTo;

    private void Write(OutboundFrame frame)
    {
        if (_writerDone)
        {
            // The socket is gone; whatever closed it already gave the reason.
            return;
        }
        var length = frame.Payload.Length;
        var overBytes = Interlocked.Add(ref _queuedBytes, length) > _maxQueuedBytes;
        var overFrames = Interlocked.Increment(ref _queuedFrames) > _maxQueuedFrames;
        if (overBytes || overFrames || !_queue.Writer.TryWrite(frame))
        {
            Interlocked.Add(ref _queuedBytes, -length);
            Interlocked.Decrement(ref _queuedFrames);
            // A frame refused because the queue was completed belongs to a connection that is closing already;
            // the first reason stays.
            RequestClose(Connections.CloseReason.SlowConsumer);
        }
    }

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
        _queue.Writer.TryComplete();
        _closing.TrySetResult();
        return true;
    }

    /// <summary>The single writer: drains the queue onto the socket, then sends the close frame.</summary>
    public async Task RunSendLoopAsync()
    {
        try
        {
            var reader = _queue.Reader;
            while (await reader.WaitToReadAsync())
            {
                while (reader.TryRead(out var frame))
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
            }

            var reason = CloseReason ?? Connections.CloseReason.Normal;
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await _socket.CloseOutputAsync(reason.Status, reason.Description, CancellationToken.None);
            }
        }
        finally
        {
            // Nothing will be sent any more: producers must stop, a paced sender must not wait.
            _writerDone = true;
            _queue.Writer.TryComplete();
            Interlocked.Exchange(ref _spaceWaiter, null)?.TrySetResult();
        }
    }
}

/// <summary>
/// Where a connection is typing. Set by its receive loop, lapsed by the typing sweeper, emptied when it closes;
/// guarded by its own lock because those run on different threads.
/// </summary>
internal sealed class TypingState
{
    private readonly Dictionary<long, long> _until = [];

    /// <summary>Records typing (until <paramref name="until"/>, in timestamp ticks) or its end. True when the state changed.</summary>
    public bool Set(long conversationId, bool isTyping, long until)
    {
        lock (_until)
        {
            if (!isTyping)
            {
                return _until.Remove(conversationId);
            }
            var changed = !_until.ContainsKey(conversationId);
            _until[conversationId] = until;
            return changed;
        }
    }

    /// <summary>Removes and returns the conversations whose typing lapsed by <paramref name="now"/>; all of them when null.</summary>
    public List<long> TakeExpired(long? now)
    {
        lock (_until)
        {
            var expired = new List<long>();
            foreach (var (conversationId, until) in _until)
            {
                if (now is null || until <= now)
                {
                    expired.Add(conversationId);
                }
            }
            foreach (var conversationId in expired)
            {
                _until.Remove(conversationId);
            }
            return expired;
        }
    }
}

/// <summary>The authenticated user behind a connection, as provisioned on connect.</summary>
public sealed record ConnectedUser(long UserId, string ExternalId, string DisplayName, string? AvatarUrl);
