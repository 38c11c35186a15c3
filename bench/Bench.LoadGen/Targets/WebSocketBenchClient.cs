using System.Buffers;
using System.Net.WebSockets;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Threading.Channels;
using Bench.LoadGen.Measurement;

namespace Bench.LoadGen.Targets;

/// <summary>
/// One raw-WebSocket user: a bounded outbox drained by one send loop (a WebSocket allows one sender at a time),
/// and a receive loop that turns acks and deliveries into <see cref="LoadEvents"/>.
/// </summary>
internal sealed class WebSocketBenchClient : IBenchClient
{
    // Open-loop sending must not wait for the server, so messages queue here while a send is in progress. The
    // bound only stops a generator whose server stopped reading from growing without limit; such messages are
    // counted as lost.
    private const int OutboxCapacity = 4096;
    private const int InitialReceiveBuffer = 4096;
    private static readonly TimeSpan CloseTimeout = TimeSpan.FromSeconds(5);
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    private readonly ClientWebSocket _socket;
    private readonly LoadEvents _events;
    private readonly int _contentLength;
    private readonly string _runTag = LoadRunTag.Value;
    private readonly Channel<OutgoingMessage> _outbox = Channel.CreateBounded<OutgoingMessage>(new BoundedChannelOptions(OutboxCapacity)
    {
        SingleReader = true,
        SingleWriter = false,
        FullMode = BoundedChannelFullMode.DropWrite,
    });
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SeqTracker _order = new();
    private readonly Task _receiving;
    private readonly Task _sending;
    private volatile bool _closing;

    public WebSocketBenchClient(ClientWebSocket socket, LoadEvents events, int contentLength)
    {
        _socket = socket;
        _events = events;
        _contentLength = contentLength;
        _receiving = ReceiveLoopAsync();
        _sending = SendLoopAsync();
    }

    public async Task WaitReadyAsync(CancellationToken cancellationToken) => await _ready.Task.WaitAsync(cancellationToken);

    public bool TrySend(in OutgoingMessage message) => _outbox.Writer.TryWrite(message);

    private async Task SendLoopAsync()
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using var writer = new Utf8JsonWriter(buffer, WriterOptions);
        var content = new byte[Math.Max(_contentLength, Stamp.MaxLength + 1)];
        try
        {
            while (await _outbox.Reader.WaitToReadAsync())
            {
                while (_outbox.Reader.TryRead(out var message))
                {
                    buffer.ResetWrittenCount();
                    writer.Reset(buffer);
                    writer.WriteStartObject();
                    writer.WriteString("type"u8, "message"u8);
                    writer.WriteNumber("conversationId"u8, message.ConversationId);
                    writer.WriteString("clientMessageId"u8, message.Stamp.ClientMessageId(_runTag));
                    writer.WriteString("content"u8, content.AsSpan(0, Payload.Write(message.Stamp, _contentLength, content)));
                    writer.WriteEndObject();
                    writer.Flush();
                    _events.Sending(message.Stamp);
                    await _socket.SendAsync(buffer.WrittenMemory, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The receive loop reports the lost connection; what is still queued is never answered and shows as
            // unanswered messages in its phase.
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[InitialReceiveBuffer];
        try
        {
            while (true)
            {
                var length = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (length == buffer.Length)
                    {
                        Array.Resize(ref buffer, buffer.Length * 2);
                    }
                    result = await _socket.ReceiveAsync(buffer.AsMemory(length), CancellationToken.None);
                    length += result.Count;
                } while (!result.EndOfMessage);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    if (!_closing)
                    {
                        _events.ConnectionLost($"the server closed a connection: {_socket.CloseStatus} {_socket.CloseStatusDescription}");
                    }
                    if (_socket.State == WebSocketState.CloseReceived)
                    {
                        await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                    }
                    return;
                }
                Handle(buffer.AsSpan(0, length));
            }
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or OperationCanceledException)
        {
            if (!_closing)
            {
                _events.ConnectionLost($"a connection broke: {e.Message}");
            }
        }
        finally
        {
            _ready.TrySetException(new WebSocketException("The connection closed before the server sent ready."));
            _outbox.Writer.TryComplete();
        }
    }

    private void Handle(ReadOnlySpan<byte> json)
    {
        var frame = ServerFrame.Parse(json);
        switch (frame.Type)
        {
            case ServerFrameType.Message when frame.HasStamp && !frame.IsCatchup:
                _events.Delivered(frame.Stamp, _order.Observe(frame.ConversationId, frame.Seq));
                break;
            case ServerFrameType.Ack when frame.HasStamp:
                _events.Acked(frame.Stamp, frame.ConversationId);
                break;
            case ServerFrameType.Error when frame.HasStamp:
                _events.Failed(frame.Stamp, "error frame: " + System.Text.Encoding.UTF8.GetString(json));
                break;
            case ServerFrameType.Ready:
                _ready.TrySetResult();
                break;
            default:
                // welcome, presence, typing, catch-up: not part of the measurement.
                break;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _closing = true;
        _outbox.Writer.TryComplete();
        await _sending;
        try
        {
            if (_socket.State == WebSocketState.Open)
            {
                using var timeout = new CancellationTokenSource(CloseTimeout);
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", timeout.Token);
            }
            await _receiving.WaitAsync(CloseTimeout);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or TimeoutException or ObjectDisposedException)
        {
            _socket.Abort();
        }
        _socket.Dispose();
    }
}
