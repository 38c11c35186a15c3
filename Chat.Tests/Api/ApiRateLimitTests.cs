using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Api;

/// <summary>A gateway of its own, with a small HTTP API bucket per user: 3 at once, 1 a second.</summary>
public sealed class ApiRateLimitTests : GatewayTest
{
    protected override Dictionary<string, string?> Settings => new()
    {
        ["Chat:Limits:ApiRequestsPerSecond"] = "1",
        ["Chat:Limits:ApiBurst"] = "3",
    };

    [Test]
    public async Task A_user_past_the_burst_gets_429_with_retry_after_and_the_refused_request_has_no_effect()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var aliceHttp = Gateway.CreateHttpClient(alice.ExternalId);
        using var bobHttp = Gateway.CreateHttpClient(bob.ExternalId);

        // Until the first 429 rather than exactly three: the bucket refills a token a second, and on a loaded machine
        // the first requests (the profile made, the endpoints compiled) can take that long. The POST right after a 429
        // finds the bucket as empty as it left it.
        var allowed = new List<HttpStatusCode>();
        HttpStatusCode status;
        while ((status = (await aliceHttp.GetAsync("/api/users/me")).StatusCode) != HttpStatusCode.TooManyRequests && allowed.Count < 20)
        {
            allowed.Add(status);
        }
        var refused = await aliceHttp.PostAsJsonAsync("/api/conversations", new { title = "refused", memberExternalIds = new[] { bob.ExternalId } });
        var bobsOwn = await bobHttp.GetAsync("/api/users/me");

        Assert.That(status, Is.EqualTo(HttpStatusCode.TooManyRequests));
        Assert.That(allowed, Has.Count.GreaterThanOrEqualTo(3).And.All.EqualTo(HttpStatusCode.OK), "the burst, and what refilled while it was used");
        Assert.That(refused.StatusCode, Is.EqualTo(HttpStatusCode.TooManyRequests));
        Assert.That(refused.Headers.RetryAfter?.Delta, Is.EqualTo(TimeSpan.FromSeconds(1)));
        Assert.That(refused.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"));
        var problem = await refused.Content.ReadFromJsonAsync<JsonElement>();
        Assert.That((problem.Long("status"), problem.Str("title")), Is.EqualTo((429L, "Too Many Requests")));
        Assert.That(problem.Str("type"), Is.EqualTo("https://tools.ietf.org/html/rfc6585#section-4"), "every problem of the API has a type");
        Assert.That(problem.Str("detail"), Does.Contain("retry after 1 s"));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM conversations WHERE title = 'refused'"), Is.Zero, "nothing was created");
        Assert.That(bobsOwn.StatusCode, Is.EqualTo(HttpStatusCode.OK), "each user has a bucket of their own");

        Assert.That(await Gateway.CreateHttpClient().GetStringAsync("/metrics"), Does.Contain("chat_api_requests_limited_total 2\n"));

        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.That((await aliceHttp.GetAsync("/api/users/me")).StatusCode, Is.EqualTo(HttpStatusCode.OK), "the bucket refills");
    }
}
