using System.Diagnostics;
using Chat.Core.Connections;
using Chat.Core.Limits;
using Chat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Chat.Tests.Hardening;

/// <summary>A client whose network vanishes without a FIN, played by a relay that stops forwarding but stays open.</summary>
public sealed class KeepAliveTests : GatewayTest
{
    // Long enough that a pong delayed by a busy test machine is not taken for a vanished peer.
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    protected override Dictionary<string, string?> Settings => new()
    {
        ["Chat:Limits:KeepAliveInterval"] = Interval.ToString(),
        ["Chat:Limits:KeepAliveTimeout"] = Timeout.ToString(),
        // Far above the waits below, which test the keep-alive, not the deadline that ends a catch-up the database
        // cannot serve (CatchupDatabaseTimeoutTests).
        ["Chat:Database:RequestTimeout"] = "00:01:00",
    };

    [Test]
    public async Task A_half_open_connection_is_dropped_within_interval_plus_timeout_and_its_user_goes_offline()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        await using var relay = new TcpProxy("127.0.0.1", Gateway.HttpAddress.Port);
        var viaRelay = new UriBuilder(Gateway.WebSocketAddress) { Port = relay.Port }.Uri;
        var a = Track(await ChatTestClient.ConnectAsync(viaRelay, Gateway.TokenFor(alice.ExternalId)));
        await a.ReadUntilReadyAsync();
        var b = await ConnectAsync(bob);
        var registry = Gateway.Services.GetRequiredService<ConnectionRegistry>();

        // Pings are answered through the relay: more than an interval and a timeout pass and the idle connection stays.
        await Task.Delay(Interval + Timeout + Interval);
        Assert.That((await a.SendMessageAsync(conversation, "still here")).Type(), Is.EqualTo("ack"));

        relay.BlackHole();
        var clock = Stopwatch.StartNew();
        await b.NextAsync(f => f.Type() == "presence" && f.Long("senderId") == alice.Id && f.Str("presenceStatus") == "offline", TimeSpan.FromSeconds(10));
        var dropped = clock.Elapsed;
        a.Abort();
        TestContext.Out.WriteLine($"dropped after {dropped.TotalMilliseconds:F0} ms");

        // One interval until the next ping and one timeout for its pong, each checked on a heartbeat of a quarter of
        // the shorter (docs/protocol.md, section 15), and two seconds for a busy machine.
        Assert.That(dropped, Is.LessThan((Interval + Timeout) * 1.25 + TimeSpan.FromSeconds(2)));
        Assert.That(registry.ConnectionCount, Is.EqualTo(1), "only bob's connection is left");
        Assert.That(() => Gateway.Logs.Lines.Any(l => l.Contains($"of user {alice.Id} was lost: it ended without a close frame")), Is.True.After(5000, 50),
            "the log says the connection was lost, not that it closed with no code");
        Assert.That(registry.PresenceOf(alice.Id), Is.EqualTo(Chat.Core.Protocol.PresenceStatus.Offline));
        Assert.That(await ConnectionLimitTests.EventuallyAsync(() => Task.FromResult(Gateway.Services.GetRequiredService<UserConnectionLimiter>().UserCount), 1), Is.EqualTo(1),
            "the dropped connection no longer counts against its user");
        ReliabilityReport.Ledger.FaultInjected("half-open client (relay black-holes without FIN)");
        ReliabilityReport.Ledger.FaultSurvived("half-open client (relay black-holes without FIN)");
        ReliabilityReport.Ledger.SocketClosed(1006, "no pong within KeepAliveTimeout (dropped, no close frame)");
    }

    // The device that set the status in force vanishes: once the keep-alive drops it, the status of the device left
    // is announced, as for a close.
    [Test]
    public async Task A_device_dropped_by_the_keep_alive_hands_its_users_status_to_the_device_left()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var laptop = await ConnectAsync(alice);
        await using var relay = new TcpProxy("127.0.0.1", Gateway.HttpAddress.Port);
        var viaRelay = new UriBuilder(Gateway.WebSocketAddress) { Port = relay.Port }.Uri;
        var phone = Track(await ChatTestClient.ConnectAsync(viaRelay, Gateway.TokenFor(alice.ExternalId)));
        await phone.ReadUntilReadyAsync();
        await laptop.SendAsync(new { type = "presence", presenceStatus = "away" });
        await phone.SendAsync(new { type = "presence", presenceStatus = "busy" });
        Func<System.Text.Json.JsonElement, bool> aliceStatus = f => f.Type() == "presence" && f.Long("senderId") == alice.Id;
        Assert.That((await b.CollectAsync(TimeSpan.FromMilliseconds(500), aliceStatus)).Select(f => f.Str("presenceStatus")),
            Is.EqualTo(new[] { "online", "away", "busy" }));

        relay.BlackHole();

        var next = await b.NextAsync(aliceStatus, TimeSpan.FromSeconds(10));
        phone.Abort();
        Assert.That(next.Str("presenceStatus"), Is.EqualTo("away"), "the laptop's status, not offline");
        Assert.That(await b.CollectAsync(TimeSpan.FromMilliseconds(500), aliceStatus), Is.Empty);
    }

    [Test]
    public async Task A_client_that_answers_pings_stays_while_its_message_waits_on_the_database_for_longer_than_interval_plus_timeout()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);

        // The conversation's row is held, so the message's batch waits for it: the frame stays in hand for seconds.
        await using (var row = await TestDatabase.DataSource.OpenConnectionAsync())
        {
            await using var transaction = await row.BeginTransactionAsync();
            await Dapper.SqlMapper.ExecuteAsync(row, "SELECT 1 FROM conversations WHERE id = @conversation FOR UPDATE", new { conversation }, transaction);
            await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "held", content = "held up" });
            await Task.Delay(Interval + Timeout + Interval + Timeout);
        }

        Assert.That((await a.AnswerAsync("held")).Type(), Is.EqualTo("ack"), "its pongs were read while the frame was in hand");
        Assert.That(a.State, Is.EqualTo(System.Net.WebSockets.WebSocketState.Open));
    }

    [Test]
    public async Task A_client_that_answers_pings_stays_while_its_catch_up_waits_on_the_database_for_longer_than_interval_plus_timeout()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        await (await ConnectAsync(bob)).SendMessageAsync(conversation, "while you were away");

        Task<ChatTestClient> connecting;
        await using (var table = await TestDatabase.DataSource.OpenConnectionAsync())
        {
            await using var transaction = await table.BeginTransactionAsync();
            await Dapper.SqlMapper.ExecuteAsync(table, "LOCK TABLE messages IN ACCESS EXCLUSIVE MODE", transaction: transaction);
            connecting = ConnectAsync(alice);
            await Task.Delay(Interval + Timeout + Interval + Timeout);
        }

        var a = await connecting;
        Assert.That(a.Catchup.Select(f => f.Str("content")), Is.EqualTo(new[] { "while you were away" }), "the catch-up finished on a socket that stayed");
    }
}
