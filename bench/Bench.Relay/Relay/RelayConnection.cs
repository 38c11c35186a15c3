using System.Net.WebSockets;
using System.Threading.Channels;

namespace Bench.Relay.Relay;

/// <summary>A relay socket's bounded send queue and its single writer; a full queue closes the socket (1008), as in the gateway.</summary>
internal sealed class RelayConnection(WebSocket socket, long userId, string name, int capacity)
{
    private readonly Channel<byte[]> _queue = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(capacity)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait,
    });
    private WebSocketCloseStatus _closeStatus = WebSocketCloseStatus.NormalClosure;
    private string _closeReason = "bye";

    public long UserId { get; } = userId;

    public string Name { get; } = name;

    public void Send(byte[] frame)
    {
        if (!_queue.Writer.TryWrite(frame))
        {
            Close(WebSocketCloseStatus.PolicyViolation, "slow consumer");
        }
    }

    public void Close(WebSocketCloseStatus status, string reason)
    {
        _closeStatus = status;
        _closeReason = reason;
        _queue.Writer.TryComplete();
    }

    public void Complete() => _queue.Writer.TryComplete();

    public async Task RunSendLoopAsync()
    {
        try
        {
            var reader = _queue.Reader;
            while (await reader.WaitToReadAsync())
            {
                while (reader.TryRead(out var frame))
                {
                    await socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
                }
            }
            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await socket.CloseOutputAsync(_closeStatus, _closeReason, CancellationToken.None);
            }
        }
        finally
        {
            _queue.Writer.TryComplete();
        }
    }
}
