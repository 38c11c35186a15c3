using System.Net;
using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

public sealed class HealthTests : GatewayTest
{
    [Test]
    public async Task Liveness_answers_200_with_a_small_JSON_body()
    {
        using var http = Gateway.CreateHttpClient();
        var response = await http.GetAsync("/health/live");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/json"));
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.That(body.RootElement.GetProperty("status").GetString(), Is.EqualTo("live"));
    }

    [TestCase("/health/live")]
    [TestCase("/health/ready")]
    public async Task A_health_endpoint_answers_HEAD_with_its_status_and_no_body(string path)
    {
        using var http = Gateway.CreateHttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Head, path);

        using var response = await http.SendAsync(request);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await response.Content.ReadAsByteArrayAsync(), Is.Empty);
    }

    [Test]
    public async Task Readiness_answers_200_when_PostgreSQL_answers()
    {
        using var http = Gateway.CreateHttpClient();
        var response = await http.GetAsync("/health/ready");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.That(body.RootElement.GetProperty("status").GetString(), Is.EqualTo("ready"));
    }
}

public sealed class UnreachableDatabaseTests
{
    [Test]
    public async Task Readiness_answers_503_when_PostgreSQL_does_not_while_liveness_stays_200()
    {
        // Nothing listens on port 1; the schema is not applied so the gateway starts anyway.
        await using var gateway = new TestGateway(
            new() { ["Chat:Database:ApplySchemaOnStartup"] = "false" },
            connectionString: "Host=127.0.0.1;Port=1;Username=postgres;Database=chat_test;Timeout=2").Start();
        using var http = gateway.CreateHttpClient();

        var ready = await http.GetAsync("/health/ready");
        var live = await http.GetAsync("/health/live");

        Assert.That(ready.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That(await ready.Content.ReadAsStringAsync(), Does.Contain("unavailable"));
        Assert.That(live.StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }
}
