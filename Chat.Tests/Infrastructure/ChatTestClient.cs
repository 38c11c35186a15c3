using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Chat.Tests;

namespace Chat.Tests.Infrastructure;

/// <summary>
/// A real WebSocket client for tests: a background loop reads every frame into a queue; tests take frames in
/// order, optionally skipping the types they are not about.
/// </summary>
public sealed class ChatTestClient : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly ClientWebSocket _socket;
    private readonly Channel<JsonElement> _frames = Channel.CreateUnbounded<JsonElement>();
    private readonly Task _receiving;
    private readonly SemaphoreSlim _sendLock = new(1, 1);

    // Open unless the test has paused reading, to play a client that stops reading its socket.
    private volatile TaskCompletionSource _reading = Completed();

    private ChatTestClient(ClientWebSocket socket)
    {
        _socket = socket;
        _receiving = ReceiveLoopAsync();
    }

    public JsonElement Welcome { get; private set; }

    public List<JsonElement> Catchup { get; } = [];

    public JsonElement Ready { get; private set; }

    public long UserId => Welcome.GetProperty("userId").GetInt64();

    public WebSocketCloseStatus? CloseStatus { get; private set; }

    public string? CloseDescription { get; private set; }

    public WebSocketState State => _socket.State;

    /// <summary>Completes when the server has closed the socket (or it broke).</summary>
    public Task Closed => _receiving;

    /// <param name="configure">Extra handshake options, such as an <c>Origin</c> header.</param>
    /// <param name="receiveBufferBytes">
    /// A fixed, small TCP receive buffer, so that a paused client pushes back on the server at once instead of
    /// after the megabytes the kernel's autotuning would otherwise absorb.
    /// </param>
    public static async Task<ChatTestClient> ConnectAsync(
        Uri address, string? token, string? query = null, bool tokenInQuery = false,
        Action<ClientWebSocketOptions>? configure = null, int? receiveBufferBytes = null)
    {
        var socket = new ClientWebSocket();
        configure?.Invoke(socket.Options);
        var uri = new UriBuilder(address);
        var parts = new List<string>();
        if (query is not null)
        {
            parts.Add(query);
        }
        if (token is not null && tokenInQuery)
        {
            parts.Add("access_token=" + Uri.EscapeDataString(token));
        }
        else if (token is not null)
        {
            socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
        }
        uri.Query = string.Join('&', parts);
        socket.Options.CollectHttpResponseDetails = true;
        using var timeout = new CancellationTokenSource(DefaultTimeout);
        if (receiveBufferBytes is { } bufferBytes)
        {
            using var invoker = new HttpMessageInvoker(new SocketsHttpHandler
            {
                ConnectCallback = async (context, cancel) =>
                {
                    var tcp = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { ReceiveBufferSize = bufferBytes };
                    await tcp.ConnectAsync(context.DnsEndPoint, cancel);
                    return new System.Net.Sockets.NetworkStream(tcp, ownsSocket: true);
                },
            }, disposeHandler: false);
            await socket.ConnectAsync(uri.Uri, invoker, timeout.Token);
        }
        else
        {
            await socket.ConnectAsync(uri.Uri, timeout.Token);
        }
        return new ChatTestClient(socket);
    }

    /// <summary>Stops reading the socket (frames pile up in the network and then at the server) until <see cref="ResumeReading"/>.</summary>
    public void PauseReading() => _reading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void ResumeReading() => _reading.TrySetResult();

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource();
        done.SetResult();
        return done;
    }

    /// <summary>Reads welcome, the catch-up messages and ready.</summary>
    public async Task ReadUntilReadyAsync()
    {
        Welcome = await NextAsync();
        Assert.That(Welcome.GetProperty("type").GetString(), Is.EqualTo("welcome"), "the first frame is welcome");
        while (true)
        {
            var frame = await NextAsync();
            var type = frame.GetProperty("type").GetString();
            if (type == "ready")
            {
                Ready = frame;
                return;
            }
            Assert.That(type, Is.EqualTo("message"), "only catch-up messages come between welcome and ready");
            Catchup.Add(frame);
        }
    }

    public Task SendAsync(object frame) => SendTextAsync(JsonSerializer.Serialize(frame, Json));

    public Task SendTextAsync(string text) => SendBytesAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text);

    public async Task SendBytesAsync(byte[] bytes, WebSocketMessageType type, bool endOfMessage = true)
    {
        await _sendLock.WaitAsync();
        try
        {
            await _socket.SendAsync(bytes, type, endOfMessage, CancellationToken.None);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Sends a message frame and waits for its ack (other frames that arrive meanwhile stay queued).</summary>
    public async Task<JsonElement> SendMessageAsync(long conversationId, string content, string? clientMessageId = null)
    {
        clientMessageId ??= Guid.NewGuid().ToString("N");
        await SendAsync(new { type = "message", conversationId, clientMessageId, content });
        return await NextAsync(f => f.Type() is "ack" or "error" && f.Str("clientMessageId") == clientMessageId);
    }

    /// <summary>The next frame, whatever it is.</summary>
    public Task<JsonElement> NextAsync(TimeSpan? timeout = null) => NextAsync(_ => true, timeout);

    /// <summary>The next frame of this type; frames of other types before it are dropped.</summary>
    public Task<JsonElement> NextAsync(string type, TimeSpan? timeout = null) => NextAsync(f => f.Type() == type, timeout);

    /// <summary>The next frame that matches; frames before it that do not match are dropped.</summary>
    public async Task<JsonElement> NextAsync(Func<JsonElement, bool> match, TimeSpan? timeout = null)
    {
        using var cancel = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            while (true)
            {
                var frame = await _frames.Reader.ReadAsync(cancel.Token);
                if (match(frame))
                {
                    return frame;
                }
            }
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"No matching frame within {(timeout ?? DefaultTimeout).TotalSeconds} s (socket {_socket.State}, close {CloseStatus})");
            throw;
        }
        catch (ChannelClosedException)
        {
            Assert.Fail($"The socket closed ({CloseStatus} {CloseDescription}) before a matching frame arrived");
            throw;
        }
    }

    /// <summary>
    /// The next frame that matches, or null when none comes within <paramref name="timeout"/> or the socket closes:
    /// for tests in which the server is expected to go away (a crash, a shutdown), where that is not a failure.
    /// </summary>
    public async Task<JsonElement?> TryNextAsync(Func<JsonElement, bool> match, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var frame = await _frames.Reader.ReadAsync(cancel.Token);
                if (match(frame))
                {
                    return frame;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            return null;
        }
    }

    /// <summary>Every frame that arrives within <paramref name="window"/> and matches.</summary>
    public async Task<List<JsonElement>> CollectAsync(TimeSpan window, Func<JsonElement, bool>? match = null)
    {
        var frames = new List<JsonElement>();
        using var cancel = new CancellationTokenSource(window);
        try
        {
            while (true)
            {
                var frame = await _frames.Reader.ReadAsync(cancel.Token);
                if (match is null || match(frame))
                {
                    frames.Add(frame);
                }
            }
        }
        catch (OperationCanceledException)
        {
            return frames;
        }
        catch (ChannelClosedException)
        {
            // A closed socket receives nothing: "nothing arrived" would prove nothing about the server.
            throw new AssertionException($"The socket closed ({CloseStatus} {CloseDescription}) while its frames were collected ({frames.Count} had arrived): a negative check on a closed socket proves nothing.");
        }
    }

    /// <summary>The frames that arrived before the server closed the socket and were not read yet.</summary>
    public List<JsonElement> ReceivedBeforeClose(Func<JsonElement, bool>? match = null)
    {
        Assert.That(CloseStatus, Is.Not.Null, "the socket is still open: more frames may come");
        var frames = new List<JsonElement>();
        while (_frames.Reader.TryRead(out var frame))
        {
            if (match is null || match(frame))
            {
                frames.Add(frame);
            }
        }
        return frames;
    }

    /// <summary>Waits for the server to close the socket.</summary>
    public async Task WaitClosedAsync(TimeSpan? timeout = null)
    {
        var within = timeout ?? DefaultTimeout;
        if (await Task.WhenAny(_receiving, Task.Delay(within)) != _receiving)
        {
            Assert.Fail($"The server did not close the socket within {within.TotalSeconds} s");
        }
    }

    /// <summary>A close code that RFC 6455 reserves (7.4.1): an endpoint may not send it, and a server refuses it with 1002.</summary>
    public const WebSocketCloseStatus ReservedCloseCode = (WebSocketCloseStatus)1004;

    /// <summary>Closes with <paramref name="status"/>, 1000 unless the test plays a client that breaks the protocol, and waits for the server's close.</summary>
    public async Task CloseAsync(WebSocketCloseStatus status = WebSocketCloseStatus.NormalClosure, string description = "bye")
    {
        if (_socket.State == WebSocketState.Open)
        {
            using var timeout = new CancellationTokenSource(DefaultTimeout);
            try
            {
                await _socket.CloseOutputAsync(status, description, timeout.Token);
            }
            catch (WebSocketException)
            {
                // Already gone.
            }
        }
        await WaitClosedAsync();
    }

    /// <summary>Drops the TCP connection without a close handshake, as a crashing client would.</summary>
    public void Abort() => _socket.Abort();

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[1 << 20];
        try
        {
            while (true)
            {
                var length = 0;
                WebSocketReceiveResult result;
                do
                {
                    await _reading.Task;
                    // A ready or a catch-up message can be larger than the buffer: the server's frames are not bounded.
                    if (length == buffer.Length)
                    {
                        Array.Resize(ref buffer, buffer.Length * 2);
                    }
                    result = await _socket.ReceiveAsync(new ArraySegment<byte>(buffer, length, buffer.Length - length), CancellationToken.None);
                    length += result.Count;
                } while (!result.EndOfMessage);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    CloseStatus = result.CloseStatus;
                    CloseDescription = result.CloseStatusDescription;
                    ReliabilityReport.Ledger.SocketClosed((int)(CloseStatus ?? WebSocketCloseStatus.Empty), CloseDescription is { Length: > 0 } cause ? cause : "(none)");
                    if (_socket.State == WebSocketState.CloseReceived)
                    {
                        await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
                    }
                    return;
                }
                using var document = JsonDocument.Parse(buffer.AsMemory(0, length));
                _frames.Writer.TryWrite(document.RootElement.Clone());
            }
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or OperationCanceledException)
        {
            CloseStatus ??= _socket.CloseStatus;
        }
        finally
        {
            _frames.Writer.TryComplete();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            try
            {
                await CloseAsync();
            }
            catch (AssertionException)
            {
                _socket.Abort();
            }
        }
        _socket.Dispose();
        _sendLock.Dispose();
    }
}

public static class FrameExtensions
{
    public static string? Type(this JsonElement frame) => frame.Str("type");

    public static string? Str(this JsonElement frame, string name) =>
        frame.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    public static long Long(this JsonElement frame, string name) => frame.GetProperty(name).GetInt64();
}
