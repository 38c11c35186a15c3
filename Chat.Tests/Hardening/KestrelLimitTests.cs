using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Hardening;

public sealed class KestrelLimitTests : GatewayTest
{
    protected override Dictionary<string, string?> Settings => new()
    {
        ["Chat:Limits:MaxConnections"] = "3",
        ["Chat:Limits:MaxRequestHeadersBytes"] = "4096",
        ["Chat:Limits:HandshakeTimeout"] = "00:00:01",
        ["Chat:Limits:HttpKeepAliveTimeout"] = "00:00:01",
    };

    [Test]
    public async Task Past_MaxConnections_an_upgrade_gets_503_until_a_socket_closes()
    {
        var users = await Gateway.CreateUsersAsync(4);
        var open = new List<ChatTestClient>();
        for (var i = 0; i < 3; i++)
        {
            open.Add(await ConnectAsync(users[i]));
        }

        var fourth = await Handshake.StatusAsync(Gateway.WebSocketAddress, Gateway.TokenFor(users[3].ExternalId), cause: "server at MaxConnections");
        using var http = Gateway.CreateHttpClient();
        var health = await http.GetAsync("/health/live");
        await open[0].CloseAsync();
        var afterClose = await ConnectionLimitTests.EventuallyAsync(
            () => Handshake.StatusAsync(Gateway.WebSocketAddress, Gateway.TokenFor(users[3].ExternalId)), HttpStatusCode.SwitchingProtocols);

        Assert.That(fourth, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That(health.StatusCode, Is.EqualTo(HttpStatusCode.OK), "plain HTTP is not counted against upgraded connections");
        Assert.That(afterClose, Is.EqualTo(HttpStatusCode.SwitchingProtocols));
    }

    [Test]
    public async Task A_handshake_with_oversized_headers_gets_431()
    {
        var token = Gateway.TokenFor((await Gateway.CreateUserAsync()).ExternalId);

        var status = await Handshake.StatusAsync(Gateway.WebSocketAddress, token, o => o.SetRequestHeader("X-Padding", new string('p', 5000)), "request headers too large");

        Assert.That(status, Is.EqualTo(HttpStatusCode.RequestHeaderFieldsTooLarge));
        ReliabilityReport.Ledger.BadInput("handshake with oversized headers");
    }

    [Test]
    public async Task A_connection_that_never_sends_a_byte_is_dropped_after_the_http_keep_alive_timeout()
    {
        // The handshake timeout runs from a request's first byte: before it, Kestrel's keep-alive timeout (130 s
        // unless set) is all that frees a connection opened and left silent.
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, Gateway.HttpAddress.Port);
        var stream = tcp.GetStream();
        var clock = Stopwatch.StartNew();

        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var read = await stream.ReadAsync(new byte[64], limit.Token);

        Assert.That(read, Is.Zero, "closed without an answer");
        // The timeout, plus Kestrel's once-a-second heartbeat that checks it, plus a busy machine's slack.
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(1 + 3)));
        ReliabilityReport.Ledger.BadInput("connection that never sends a byte");
    }

    [Test]
    public async Task A_client_that_never_finishes_its_handshake_headers_is_dropped_after_the_handshake_timeout()
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, Gateway.HttpAddress.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"));
        var clock = Stopwatch.StartNew();

        var answer = new StringBuilder();
        var buffer = new byte[1024];
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        int read;
        while ((read = await stream.ReadAsync(buffer, limit.Token)) > 0)
        {
            answer.Append(Encoding.ASCII.GetString(buffer, 0, read));
        }
        var dropped = clock.Elapsed;

        Assert.That(answer.ToString(), Does.StartWith("HTTP/1.1 408"));
        // The timeout, plus Kestrel's once-a-second heartbeat that checks it, plus a busy machine's slack.
        Assert.That(dropped, Is.LessThan(TimeSpan.FromSeconds(1 + 3)));
        ReliabilityReport.Ledger.BadInput("handshake that never finishes its headers");
        ReliabilityReport.Ledger.HandshakeRefused(408, "handshake headers not finished within HandshakeTimeout");
    }
}
