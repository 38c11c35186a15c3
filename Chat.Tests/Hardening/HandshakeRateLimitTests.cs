using System.Net;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Hardening;

/// <summary>A gateway of its own, with a small handshake bucket per user: 3 at once, then one every 20 seconds.</summary>
public sealed class HandshakeRateLimitTests : GatewayTest
{
    protected override Dictionary<string, string?> Settings => new()
    {
        ["Chat:Limits:HandshakesPerSecond"] = "0.05",
        ["Chat:Limits:HandshakeBurst"] = "3",
    };

    [Test]
    public async Task A_user_who_reconnects_past_the_burst_gets_429_with_retry_after_and_others_still_connect()
    {
        var (looper, other) = (await Gateway.CreateUserAsync("looper"), await Gateway.CreateUserAsync("other"));
        var token = Gateway.TokenFor(looper.ExternalId);

        // Each one opened and closed again: the connection limit is never near, only the rate.
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            statuses.Add(await Handshake.StatusAsync(Gateway.WebSocketAddress, token));
        }
        var (refused, status) = await Handshake.OpenAsync(Gateway.WebSocketAddress, token, cause: "too many handshakes of one user");
        using (refused)
        {
            Assert.That(statuses, Is.All.EqualTo(HttpStatusCode.SwitchingProtocols), "the burst");
            Assert.That(status, Is.EqualTo(HttpStatusCode.TooManyRequests));
            var retryAfter = refused.HttpResponseHeaders?["Retry-After"].Single();
            Assert.That(int.Parse(retryAfter!, System.Globalization.CultureInfo.InvariantCulture), Is.InRange(1, 20), "seconds until the next token");
        }
        Assert.That(await Handshake.StatusAsync(Gateway.WebSocketAddress, Gateway.TokenFor(other.ExternalId)), Is.EqualTo(HttpStatusCode.SwitchingProtocols),
            "each user has a bucket of their own");
        Assert.That(await Gateway.CreateHttpClient().GetStringAsync("/metrics"), Does.Contain("chat_handshakes_refused_total{status=\"429\"} 1\n"));
    }
}
