using System.Net;
using Chat.Data.Messages;
using Chat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Chat.Tests.Gateway;

/// <summary>A gateway whose database goes away and comes back, through a TCP relay the test controls.</summary>
public sealed class DatabaseFaultTests
{
    private const string GatewayApplicationName = "chat-gateway-under-fault";

    private TcpProxy _proxy = null!;
    private TestGateway _gateway = null!;

    [SetUp]
    public void StartGatewayBehindProxy()
    {
        var target = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString);
        _proxy = new TcpProxy(target.Host!, target.Port);
        var viaProxy = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString) { Host = "127.0.0.1", Port = _proxy.Port, Timeout = 3, ApplicationName = GatewayApplicationName };
        _gateway = new TestGateway(connectionString: viaProxy.ConnectionString).Start();
    }

    [TearDown]
    public async Task Stop()
    {
        await _gateway.DisposeAsync();
        await _proxy.DisposeAsync();
    }

    [Test]
    public async Task While_the_database_is_down_senders_get_internal_and_no_ack_and_readiness_is_503()
    {
        var (alice, bob) = (await _gateway.CreateUserAsync(), await _gateway.CreateUserAsync());
        var conversation = await _gateway.CreateConversationAsync(alice, bob);
        await using var a = await _gateway.ConnectAsync(alice);
        await using var b = await _gateway.ConnectAsync(bob);
        using var http = _gateway.CreateHttpClient();

        _proxy.Cut();
        var reply = await a.SendMessageAsync(conversation, "into the void", "outage-1");
        var ready = await http.GetAsync("/health/ready");
        var live = await http.GetAsync("/health/live");

        Assert.That(reply.Type(), Is.EqualTo("error"), "no ack for what was not committed");
        Assert.That(reply.Str("code"), Is.EqualTo("internal"));
        Assert.That(reply.Str("clientMessageId"), Is.EqualTo("outage-1"));
        Assert.That(ready.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That(live.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.Zero, "nothing half-written");

        _proxy.Restore();
        var retry = await a.SendMessageAsync(conversation, "into the void", "outage-1");

        Assert.That(retry.Type(), Is.EqualTo("ack"), "the gateway recovers by itself");
        Assert.That((await http.GetAsync("/health/ready")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(1));
        Assert.That((await b.NextAsync("message")).Str("content"), Is.EqualTo("into the void"));
    }

    [Test]
    public async Task Terminated_database_connections_are_retried_without_the_client_noticing()
    {
        var (alice, bob) = (await _gateway.CreateUserAsync(), await _gateway.CreateUserAsync());
        var conversation = await _gateway.CreateConversationAsync(alice, bob);
        await using var a = await _gateway.ConnectAsync(alice);
        await a.SendMessageAsync(conversation, "warm the pool");

        // Kill every pooled connection of this gateway's data source; the next command finds a dead one.
        var terminated = await Sql.ScalarAsync<long>(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = @name",
            new { name = GatewayApplicationName });
        Assert.That(terminated, Is.GreaterThan(0), "the gateway had pooled connections to kill");
        var acks = new List<string?>();
        for (var i = 0; i < 5; i++)
        {
            acks.Add((await a.SendMessageAsync(conversation, $"after {i}", $"after-{i}")).Type());
        }

        Assert.That(acks, Is.All.EqualTo("ack"));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(6));
    }

    [Test]
    public async Task An_ack_lost_with_the_connection_is_recovered_by_retrying_with_the_same_key()
    {
        var (alice, bob) = (await _gateway.CreateUserAsync(), await _gateway.CreateUserAsync());
        var conversation = await _gateway.CreateConversationAsync(alice, bob);
        var messages = _gateway.Services.GetRequiredService<MessageRepository>();
        var message = new NewMessage(conversation, alice.Id, "lost-ack", "committed, then the line broke", "text", null, null, "committed");

        // The first attempt commits; its client never hears back. The retry must find it, not store it again.
        var first = await messages.StoreAsync(message, CancellationToken.None);
        var retry = await messages.StoreAsync(message, CancellationToken.None);

        Assert.That(first.Outcome, Is.EqualTo(StoreOutcome.Stored));
        Assert.That(retry.Outcome, Is.EqualTo(StoreOutcome.Duplicate));
        Assert.That(retry.MessageId, Is.EqualTo(first.MessageId));
        Assert.That(retry.Seq, Is.EqualTo(first.Seq));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(1));
    }
}
