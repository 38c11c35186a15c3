using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Chat.Cli.Infrastructure;

namespace Chat.Cli.Client;

/// <summary>
/// One WebSocket to the gateway (docs/protocol.md). A background loop reads every frame into a queue, so that a
/// reader may give up waiting (a timeout) without cancelling a pending receive, which would abort the socket.
/// </summary>
internal sealed class ChatSocket : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly ClientWebSocket _socket;
    // Unbounded on purpose: the loop must keep reading (and so answering pings) however slowly frames are consumed;
    // a command-line client holds at most what one run of it is sent.
    private readonly Channel<JsonElement> _frames = Channel.CreateUnbounded<JsonElement>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = true });
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Task _receiving;

    private ChatSocket(ClientWebSocket socket, string name)
    {
        _socket = socket;
        Name = name;
        _receiving = ReceiveLoopAsync();
    }

    /// <summary>Who this socket belongs to, for messages.</summary>
    public string Name { get; }

    public WebSocketCloseStatus? CloseStatus { get; private set; }

    /// <summary>Whether frames can still be sent: no close was sent or received, and the connection is not lost.</summary>
    public bool IsOpen => _socket.State == WebSocketState.Open;

    public string? CloseDescription { get; private set; }

    /// <summary>How the socket ended, for messages: <c>1001 server shutting down</c>, or <c>connection lost</c> without a close frame.</summary>
    public string CloseSummary => CloseStatus is { } status ? $"{(int)status} {CloseDescription}".TrimEnd() : "connection lost";

    /// <summary>Opens <c>/ws</c> with the target's token. A refused token or an unreachable gateway is a <see cref="CliFailure"/>.</summary>
    public static async Task<ChatSocket> ConnectAsync(GatewayTarget target, bool catchup, string name, CancellationToken cancellation)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", "Bearer " + target.Token);
        socket.Options.CollectHttpResponseDetails = true;
        var url = target.WebSocketUrl(catchup);
        try
        {
            await socket.ConnectAsync(url, cancellation);
        }
        catch (WebSocketException e)
        {
            var status = (int)socket.HttpStatusCode;
            var challenge = Header(socket, "WWW-Authenticate");
            var retryAfter = Header(socket, "Retry-After");
            socket.Dispose();
            throw status switch
            {
                401 => new HandshakeRefused(status, ApiResponse.RefusedToken(challenge, where: " at the WebSocket handshake") + "."),
                // With Retry-After: too many handshakes lately (Chat:Limits:HandshakesPerSecond); without: too many sockets.
                429 when retryAfter is not null => new HandshakeRefused(status, $"the gateway refused the WebSocket (HTTP 429): this user opened connections faster than the gateway allows (Chat:Limits:HandshakesPerSecond); retry in {retryAfter} s."),
                429 => new HandshakeRefused(status, "the gateway refused the WebSocket (HTTP 429): this user already holds as many connections as the gateway allows (Chat:Limits:MaxConnectionsPerUser); close one and retry."),
                503 => new HandshakeRefused(status, "the gateway refused the WebSocket (HTTP 503): it is shutting down or cannot reach its database; retry later."),
                0 => ChatApi.Unreachable(target.BaseUrl, e),
                _ => new HandshakeRefused(status, $"the WebSocket handshake at {url} failed with HTTP {status}."),
            };
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new ChatSocket(socket, name);
    }

    private static string? Header(ClientWebSocket socket, string name) =>
        socket.HttpResponseHeaders?.FirstOrDefault(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Value?.FirstOrDefault();

    /// <summary>How many bytes <paramref name="frame"/> takes on the wire.</summary>
    public static int SizeOf(object frame) => Encoding.UTF8.GetByteCount(JsonSerializer.Serialize(frame, Json));

    public async Task SendAsync(object frame, CancellationToken cancellation)
    {
        var bytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(frame, Json));
        await _sendLock.WaitAsync(cancellation);
        try
        {
            await _socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, cancellation);
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException)
        {
            throw new CliFailure($"{Name}: the WebSocket is closed ({CloseSummary}); the frame was not sent.");
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>The next frame, or null once the socket has closed and every frame has been read.</summary>
    public async ValueTask<JsonElement?> ReceiveAsync(CancellationToken cancellation)
    {
        try
        {
            return await _frames.Reader.ReadAsync(cancellation);
        }
        catch (ChannelClosedException)
        {
            return null;
        }
    }

    /// <summary>Closes with 1000 and waits (within the token) for the server's answer.</summary>
    public async Task CloseAsync(CancellationToken cancellation)
    {
        if (_socket.State == WebSocketState.Open)
        {
            try
            {
                await _sendLock.WaitAsync(cancellation);
                try
                {
                    await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", cancellation);
                }
                finally
                {
                    _sendLock.Release();
                }
            }
            catch (Exception e) when (e is WebSocketException or ObjectDisposedException)
            {
                // Already gone: nothing to close.
            }
        }
        await _receiving.WaitAsync(cancellation);
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[64 * 1024];
        var message = new MemoryStream();
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveAsync(buffer, CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    CloseStatus = result.CloseStatus;
                    CloseDescription = result.CloseStatusDescription;
                    if (_socket.State == WebSocketState.CloseReceived)
                    {
                        await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
                    }
                    return;
                }
                message.Write(buffer, 0, result.Count);
                if (!result.EndOfMessage)
                {
                    continue;
                }
                try
                {
                    using var document = JsonDocument.Parse(message.GetBuffer().AsMemory(0, (int)message.Length));
                    _frames.Writer.TryWrite(document.RootElement.Clone());
                }
                catch (JsonException)
                {
                    // The protocol promises JSON; a frame that is not is skipped rather than ending the session.
                }
                message.SetLength(0);
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
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await CloseAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                // The server did not answer the close in time; abort below.
            }
        }
        _socket.Abort();
        _socket.Dispose();
        await _receiving.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _sendLock.Dispose();
    }
}
