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
    private readonly Channel<OutboundFrame> _queue;
    private readonly int _maxQueuedBytes;
    private readonly int _maxQueuedFrames;
    private long _queuedBytes;
    private CloseReason? _closeReason;

    // Until catch-up has been queued, live frames wait here so that the client sees catch-up first and
    // nothing twice. Flipped to false once, under the lock.
    private volatile bool _gated = true;
    private readonly List<OutboundFrame> _held = [];
    private IReadOnlyDictionary<long, long>? _replayedUpTo;

    public ChatConnection(long id, ConnectedUser user, WebSocket socket, int queueCapacity, int maxQueuedBytes)
    {
        Id = id;
        User = user;
        _socket = socket;
        _maxQueuedFrames = queueCapacity;
        _maxQueuedBytes = maxQueuedBytes;
        _queue = Channel.CreateBounded<OutboundFrame>(new BoundedChannelOptions(queueCapacity)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public long Id { get; }

    public ConnectedUser User { get; }

    public long UserId => User.UserId;

    /// <summary>Why the gateway is closing this connection, once it is; null while it is open.</summary>
    public CloseReason? CloseReason => Volatile.Read(ref _closeReason);

    /// <summary>Conversations this connection receives. Guarded by the registry's lock.</summary>
    internal HashSet<long> Subscriptions { get; } = [];

    /// <summary>The status this connection last set, and when (a registry-wide counter). Guarded by the registry's lock.</summary>
    internal PresenceStatus Presence { get; set; } = PresenceStatus.Online;

    internal long PresenceVersion { get; set; }

    /// <summary>Conversations this connection said it is typing in; touched only by its own receive loop.</summary>
    internal HashSet<long> TypingIn { get; } = [];

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

    /// <summary>Queues a frame addressed to this connection alone (welcome, catch-up, ack, error); never held back.</summary>
    public void Send(OutboundFrame frame) => Write(frame);

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
        var length = frame.Payload.Length;
        if (Interlocked.Add(ref _queuedBytes, length) > _maxQueuedBytes || !_queue.Writer.TryWrite(frame))
        {
            Interlocked.Add(ref _queuedBytes, -length);
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
        return true;
    }

    /// <summary>The single writer: drains the queue onto the socket, then sends the close frame.</summary>
    public async Task RunSendLoopAsync()
    {
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync())
        {
            while (reader.TryRead(out var frame))
            {
                Interlocked.Add(ref _queuedBytes, -frame.Payload.Length);
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
}

/// <summary>The authenticated user behind a connection, as provisioned on connect.</summary>
public sealed record ConnectedUser(long UserId, string ExternalId, string DisplayName, string? AvatarUrl);
