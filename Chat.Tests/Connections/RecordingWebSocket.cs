using System.Net.WebSockets;
using System.Text;

namespace Chat.Tests.Connections;

/// <summary>
/// A socket that records what the gateway sends through it. With <see cref="BlockSends"/> it stands for a client
/// that stopped reading: every send waits until <see cref="Release"/> (or <see cref="Abort"/>).
/// </summary>
internal sealed class RecordingWebSocket : WebSocket
{
    private readonly Lock _lock = new();
    private readonly List<byte[]> _sent = [];
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _sendStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private WebSocketState _state = WebSocketState.Open;
    private WebSocketCloseStatus? _closeStatus;
    private string? _closeDescription;

    /// <summary>Sends never finish until <see cref="Release"/> is called: the client is not reading.</summary>
    public bool BlockSends { get; init; }

    /// <summary>Completes when the first send has begun (and, when blocked, is stuck).</summary>
    public Task SendStarted => _sendStarted.Task;

    /// <summary>The payloads of completed sends, in order.</summary>
    public IReadOnlyList<byte[]> Sent
    {
        get
        {
            lock (_lock)
            {
                return [.. _sent];
            }
        }
    }

    public IReadOnlyList<string> SentText => [.. Sent.Select(p => Encoding.UTF8.GetString(p))];

    /// <summary>Lets blocked sends finish; the client started reading again.</summary>
    public void Release() => _released.TrySetResult();

    /// <summary>Waits until at least <paramref name="count"/> sends have completed.</summary>
    public async Task WaitForSentAsync(int count, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        while (true)
        {
            Task changed;
            lock (_lock)
            {
                if (_sent.Count >= count)
                {
                    return;
                }
                changed = _changed.Task;
            }
            await changed.WaitAsync(deadline.Token);
        }
    }

    public override WebSocketCloseStatus? CloseStatus => _closeStatus;

    public override string? CloseStatusDescription => _closeDescription;

    public override WebSocketState State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    public override string? SubProtocol => null;

    public override async ValueTask SendAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken)
    {
        var payload = buffer.ToArray();
        _sendStarted.TrySetResult();
        if (BlockSends)
        {
            await _released.Task.WaitAsync(cancellationToken);
        }
        TaskCompletionSource changed;
        lock (_lock)
        {
            if (_state != WebSocketState.Open && _state != WebSocketState.CloseReceived)
            {
                throw new WebSocketException(WebSocketError.InvalidState, $"send on a socket in state {_state}");
            }
            _sent.Add(payload);
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
    }

    public override Task SendAsync(ArraySegment<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken) =>
        SendAsync(buffer.AsMemory(), messageType, endOfMessage, cancellationToken).AsTask();

    public override Task CloseOutputAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _closeStatus = closeStatus;
            _closeDescription = statusDescription;
            _state = WebSocketState.CloseSent;
        }
        return Task.CompletedTask;
    }

    public override Task CloseAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _closeStatus = closeStatus;
            _closeDescription = statusDescription;
            _state = WebSocketState.Closed;
        }
        return Task.CompletedTask;
    }

    public override Task<WebSocketReceiveResult> ReceiveAsync(ArraySegment<byte> buffer, CancellationToken cancellationToken) =>
        throw new NotSupportedException("the tests drive the send side only");

    public override void Abort()
    {
        lock (_lock)
        {
            _state = WebSocketState.Aborted;
        }
        _released.TrySetResult();
    }

    public override void Dispose() => Abort();
}
