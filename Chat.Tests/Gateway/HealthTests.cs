using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Chat.Tests.Infrastructure;
using Npgsql;

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

/// <summary>
/// A server that accepts connections and never answers (a proxy whose PostgreSQL is gone): Npgsql waits its connect
/// timeout (15 s by default) on each retry, so the gateway bounds what a probe (2 s) and a request
/// (Chat:Database:RequestTimeout) wait.
/// </summary>
public sealed class SilentDatabaseTests
{
    [Test]
    public async Task Readiness_the_api_and_the_handshake_answer_503_within_their_timeouts_instead_of_a_minute()
    {
        var database = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString);
        await using var silent = new TcpProxy(database.Host!, database.Port);
        silent.BlackHole();
        await using var gateway = new TestGateway(
            new() { ["Chat:Database:ApplySchemaOnStartup"] = "false", ["Chat:Database:RequestTimeout"] = "00:00:03" },
            connectionString: new NpgsqlConnectionStringBuilder(database.ConnectionString) { Port = silent.Port }.ConnectionString).Start();
        using var anonymous = gateway.CreateHttpClient();
        using var alice = gateway.CreateHttpClient("alice-silent");
        var clock = Stopwatch.StartNew();

        var ready = anonymous.GetAsync("/health/ready");
        var api = alice.GetAsync("/api/users/me");
        var handshake = Handshake.StatusAsync(gateway.WebSocketAddress, gateway.TokenFor("alice-silent"), cause: "database not answering");

        Assert.That((await ready).StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2 + 4)), "readiness: its 2 s, and slack for a busy machine");
        Assert.That((await api).StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That(await handshake, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(3 + 5)), "a request: its Chat:Database:RequestTimeout, not four connect timeouts of 15 s");
    }

    [Test]
    public async Task An_api_request_against_a_database_without_the_schema_answers_503_as_the_handshake_does()
    {
        // The database was dropped and made again empty, or never migrated: a fault of the database, not a bug.
        var schema = "empty_" + Guid.NewGuid().ToString("N")[..12];
        await Sql.ExecuteAsync($"CREATE SCHEMA {schema}");
        try
        {
            await using var gateway = new TestGateway(
                new() { ["Chat:Database:ApplySchemaOnStartup"] = "false" },
                connectionString: new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString) { SearchPath = schema }.ConnectionString).Start();
            using var http = gateway.CreateHttpClient("alice-empty");

            using var api = await http.GetAsync("/api/users/me");

            Assert.That(api.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
            Assert.That(await Handshake.StatusAsync(gateway.WebSocketAddress, gateway.TokenFor("alice-empty"), cause: "database without the schema"), Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        }
        finally
        {
            await Sql.ExecuteAsync($"DROP SCHEMA {schema} CASCADE");
        }
    }
}
