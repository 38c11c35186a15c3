using System.Net;
using System.Net.WebSockets;
using Bench.LoadGen.Measurement;

namespace Bench.LoadGen.Targets;

/// <summary>
/// A server that speaks docs/protocol.md over a raw WebSocket: the gateway (a bearer token per user) or the
/// reference relay (the user and conversation named in the query string). All connections share one
/// <see cref="HttpMessageInvoker"/>, so thousands of them cost no handler each.
/// </summary>
public sealed class WebSocketTarget : IChatTarget, IDisposable
{
    private readonly Func<BenchUser, long, Uri> _address;
    private readonly Func<BenchUser, string?> _bearerToken;
    private readonly HttpMessageInvoker _invoker = new(new SocketsHttpHandler
    {
        // Upgraded connections leave the pool; nothing is reused, so nothing needs to linger.
        PooledConnectionLifetime = TimeSpan.Zero,
        AutomaticDecompression = DecompressionMethods.None,
        UseProxy = false,
    });

    private WebSocketTarget(string name, Func<BenchUser, long, Uri> address, Func<BenchUser, string?> bearerToken)
    {
        Name = name;
        _address = address;
        _bearerToken = bearerToken;
    }

    public string Name { get; }

    /// <summary>Sends a message's content padded to this many characters.</summary>
    public int ContentLength { get; init; } = Payload.DefaultContentLength;

    /// <summary>The chat gateway at <paramref name="webSocketAddress"/> (its <c>/ws</c>), authenticated with a token per user.</summary>
    public static WebSocketTarget Gateway(Uri webSocketAddress, Func<BenchUser, string> token) =>
        new("gateway", (_, _) => webSocketAddress, token);

    /// <summary>The reference relay at <paramref name="webSocketAddress"/>: it takes the user and its conversation from the query.</summary>
    public static WebSocketTarget Relay(Uri webSocketAddress) =>
        new("relay", (user, conversationId) => new UriBuilder(webSocketAddress)
        {
            Query = $"user={user.Id}&name={Uri.EscapeDataString(user.DisplayName)}&conversations={conversationId}",
        }.Uri, _ => null);

    public async Task<IBenchClient> ConnectAsync(BenchUser user, long conversationId, LoadEvents events, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        // The server pings; the client only answers.
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        if (_bearerToken(user) is { } token)
        {
            socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
        }
        try
        {
            await socket.ConnectAsync(_address(user, conversationId), _invoker, cancellationToken);
            var client = new WebSocketBenchClient(socket, events, ContentLength);
            await client.WaitReadyAsync(cancellationToken);
            return client;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Dispose() => _invoker.Dispose();
}
