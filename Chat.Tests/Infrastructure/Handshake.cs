using System.Net;
using System.Net.WebSockets;

namespace Chat.Tests.Infrastructure;

/// <summary>A bare WebSocket handshake, for tests about what the gateway answers before (or instead of) upgrading.</summary>
public static class Handshake
{
    /// <summary>
    /// Attempts an upgrade and returns the HTTP status: 101 when it succeeded (the socket is then closed), else
    /// the refusal. <paramref name="cause"/> names the refusal in the reliability figures.
    /// </summary>
    public static async Task<HttpStatusCode> StatusAsync(Uri address, string? token, Action<ClientWebSocketOptions>? configure = null, string? cause = null)
    {
        var (socket, status) = await OpenAsync(address, token, cause, configure);
        socket.Abort();
        socket.Dispose();
        return status;
    }

    /// <summary>Like <see cref="StatusAsync"/>, but an upgraded socket is left open (and unread) for the caller to dispose.</summary>
    public static async Task<(ClientWebSocket Socket, HttpStatusCode Status)> OpenAsync(Uri address, string? token, string? cause = null, Action<ClientWebSocketOptions>? configure = null)
    {
        var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        if (token is not null)
        {
            socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
        }
        configure?.Invoke(socket.Options);
        using var timeout = new CancellationTokenSource(ChatTestClient.DefaultTimeout);
        try
        {
            await socket.ConnectAsync(address, timeout.Token);
        }
        catch (WebSocketException)
        {
            if (cause is not null)
            {
                ReliabilityReport.Ledger.HandshakeRefused((int)socket.HttpStatusCode, cause);
            }
            return (socket, socket.HttpStatusCode);
        }
        return (socket, HttpStatusCode.SwitchingProtocols);
    }

    public static Action<ClientWebSocketOptions> Origin(string origin) => options => options.SetRequestHeader("Origin", origin);
}
