using System.Diagnostics;
using System.Net.WebSockets;
using Chat.Core.Sessions;
using Chat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Chat.Tests.Hardening;

public sealed class TokenExpiryTests : GatewayTest
{
    // No tolerance, so that the handshake accepts exactly the tokens that have not expired yet.
    protected override Dictionary<string, string?> Settings => new() { ["Chat:Auth:ClockSkew"] = "00:00:00" };

    [Test]
    public async Task A_connection_is_closed_with_1008_when_its_token_expires_and_not_before()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        // exp is in whole seconds, so the real lifetime is up to a second shorter: room for a slow connect on a busy machine.
        var token = Gateway.TokenFor(alice.ExternalId, lifetime: TimeSpan.FromSeconds(6));
        var expires = new JsonWebToken(token).ValidTo;
        var a = Track(await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, token));
        await a.ReadUntilReadyAsync();

        // Still usable shortly before exp.
        var untilShortlyBefore = expires - DateTime.UtcNow - TimeSpan.FromMilliseconds(700);
        if (untilShortlyBefore > TimeSpan.Zero)
        {
            await Task.Delay(untilShortlyBefore);
        }
        Assert.That((await a.SendMessageAsync(conversation, "just in time")).Type(), Is.EqualTo("ack"));
        await a.WaitClosedAsync(TimeSpan.FromSeconds(8));
        var closedAt = DateTime.UtcNow;

        Assert.That(a.CloseStatus, Is.EqualTo(WebSocketCloseStatus.PolicyViolation));
        Assert.That(a.CloseDescription, Is.EqualTo("token expired"));
        Assert.That(closedAt, Is.GreaterThanOrEqualTo(expires.AddMilliseconds(-100)), "not closed before exp");
        Assert.That(closedAt, Is.LessThanOrEqualTo(expires.AddSeconds(3)), "closed within a few seconds of exp");
        // The expired connection left the registry: its user went offline.
        await b.NextAsync(f => f.Type() == "presence" && f.Long("senderId") == alice.Id && f.Str("presenceStatus") == "offline");
        ReliabilityReport.Ledger.FaultInjected("access token expiring on an open connection");
        ReliabilityReport.Ledger.FaultSurvived("access token expiring on an open connection");
    }

    [Test]
    public async Task A_token_that_expires_during_a_busy_stream_closes_the_socket_with_every_ack_stored()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = Track(await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(alice.ExternalId, lifetime: TimeSpan.FromSeconds(4))));
        await a.ReadUntilReadyAsync();

        var sent = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            while (a.State == WebSocketState.Open && clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = $"exp-{sent}", content = "typing away" });
                sent++;
                await Task.Delay(5);
            }
        }
        catch (WebSocketException)
        {
            // Closed under the sender.
        }
        await a.WaitClosedAsync();
        var acks = a.ReceivedBeforeClose(f => f.Type() == "ack").Select(f => f.Str("clientMessageId")!).ToHashSet();
        var stored = await Sql.QueryAsync<string>("SELECT client_message_id FROM messages WHERE conversation_id = @conversation", new { conversation });

        Assert.That(a.CloseDescription, Is.EqualTo("token expired"));
        Assert.That(acks, Is.Not.Empty);
        Assert.That(stored, Is.EquivalentTo(acks), "the frame in hand at expiry was finished and acknowledged, nothing after it was stored");
        ReliabilityReport.Ledger.Messages("token expiry mid-stream", sent, acks.Count, stored.Count, 0, acks.Except(stored).Count(), stored.Count - stored.Distinct().Count());
    }

    [Test]
    public async Task A_connection_that_closes_before_its_token_expires_leaves_no_expiry_behind()
    {
        var expiries = Gateway.Services.GetRequiredService<TokenExpiryScheduler>();
        var before = expiries.Count;
        var user = await Gateway.CreateUserAsync();
        var client = await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(user.ExternalId, lifetime: TimeSpan.FromHours(1)));
        await client.ReadUntilReadyAsync();
        Assert.That(expiries.Count, Is.EqualTo(before + 1), "the open connection's expiry is scheduled");

        await client.DisposeAsync();

        await Eventually.TrueAsync(() => expiries.Count == before, "the closed connection's expiry was removed");
    }

    [Test]
    public async Task A_client_that_closes_as_its_token_expires_gets_its_own_close_answered_not_1008()
    {
        var alice = await Gateway.CreateUserAsync();
        var token = Gateway.TokenFor(alice.ExternalId, lifetime: TimeSpan.FromSeconds(4));
        var expires = new JsonWebToken(token).ValidTo;
        var a = Track(await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, token));
        await a.ReadUntilReadyAsync();

        // Leaving records the user's last-seen time: with their row held, the gateway is still leaving at exp.
        Task closing;
        await using (await Sql.HoldAsync("SELECT 1 FROM user_profiles WHERE id = @id FOR UPDATE", new { id = alice.Id }))
        {
            closing = a.CloseAsync();
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() == 1, "the gateway is leaving");
            var pastExpiry = expires - DateTime.UtcNow + TimeSpan.FromSeconds(1);
            if (pastExpiry > TimeSpan.Zero)
            {
                await Task.Delay(pastExpiry);
            }
        }
        await closing;

        Assert.That((a.CloseStatus, a.CloseDescription), Is.EqualTo((WebSocketCloseStatus.NormalClosure, "bye")), "the answer to the client's close, not a token expiry");
    }
}
