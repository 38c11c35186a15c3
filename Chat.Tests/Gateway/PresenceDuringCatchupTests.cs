using System.Text.Json;
using Chat.Core.Connections;
using Chat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Chat.Tests.Gateway;

/// <summary>
/// Presence while one of a user's devices is still in its catch-up: the device is held there by a client that does
/// not read a catch-up larger than every buffer between it and the server, so the other device's steps happen,
/// for certain, before the held one reaches <c>ready</c>.
/// </summary>
public sealed class PresenceDuringCatchupTests : GatewayTest
{
    private const int ContentLength = 32 * 1024;

    // 6 MiB of catch-up: more than the server's socket send buffer can grow to (4 MiB, net.ipv4.tcp_wmem), half the
    // send queue and the client's fixed 4 KiB receive buffer together.
    private const int CatchupMessages = 200;

    protected override Dictionary<string, string?> Settings => new()
    {
        ["Chat:Limits:MaxContentLength"] = ContentLength.ToString(),
        ["Chat:Limits:CatchupLimitPerConversation"] = CatchupMessages.ToString(),
        ["Chat:Limits:MaxFrameBytes"] = (40 * 1024).ToString(),
        ["Chat:Limits:SendQueueMaxBytes"] = (128 * 1024).ToString(),
    };

    private static Func<JsonElement, bool> PresenceOf(TestUser user) =>
        f => f.Type() == "presence" && f.Long("senderId") == user.Id;

    /// <summary>Bob watches Alice; Alice has a long catch-up waiting for her in their conversation.</summary>
    private async Task<(TestUser Alice, ChatTestClient Bob, long Conversation)> AliceWithALongCatchupAsync()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var content = new string('x', ContentLength);
        for (var i = 0; i < CatchupMessages; i++)
        {
            Assert.That((await b.SendMessageAsync(conversation, content)).Type(), Is.EqualTo("ack"));
        }
        return (alice, b, conversation);
    }

    /// <summary>
    /// Alice's laptop connects first and does not read, so its catch-up cannot finish until it resumes reading; her
    /// phone connects meanwhile and, being her first device to be live, brings her online.
    /// </summary>
    private async Task<(TestUser Alice, ChatTestClient Bob, long Conversation, ChatTestClient Laptop, ChatTestClient Phone)> LaptopStalledInCatchupAndPhoneLiveAsync()
    {
        var (alice, b, conversation) = await AliceWithALongCatchupAsync();
        var laptop = Track(await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(alice.ExternalId), receiveBufferBytes: 4096));
        laptop.PauseReading();

        var phone = await ConnectAsync(alice, catchup: false);
        Assert.That((await b.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("online"), "the phone is Alice's first device to be live");
        return (alice, b, conversation, laptop, phone);
    }

    [Test]
    public async Task A_device_that_finishes_its_catch_up_after_another_device_chose_away_leaves_the_user_away()
    {
        var (alice, b, conversation, laptop, phone) = await LaptopStalledInCatchupAndPhoneLiveAsync();

        await phone.SendAsync(new { type = "presence", presenceStatus = "away" });
        Assert.That((await b.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("away"));

        laptop.ResumeReading();
        await laptop.ReadUntilReadyAsync();
        Assert.That(laptop.Catchup, Has.Count.EqualTo(CatchupMessages));
        Assert.That(await Gateway.PresenceShownOverHttpAsync(conversation, alice, alice), Is.EqualTo("away"), "the laptop chose nothing");

        // Announcements reach Bob in the order they were made: the next one he hears is this, not a stray "online".
        await phone.SendAsync(new { type = "presence", presenceStatus = "busy" });
        Assert.That((await b.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("busy"));
    }

    [Test]
    public async Task A_device_in_its_catch_up_hears_nothing_of_its_users_changes_and_starts_from_the_status_in_its_ready()
    {
        var (alice, b, _, laptop, phone) = await LaptopStalledInCatchupAndPhoneLiveAsync();
        foreach (var status in new[] { "away", "busy" })
        {
            await phone.SendAsync(new { type = "presence", presenceStatus = status });
            Assert.That((await b.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo(status));
        }

        laptop.ResumeReading();
        await laptop.ReadUntilReadyAsync();
        Assert.That(laptop.Ready.Str("presenceStatus"), Is.EqualTo("busy"), "the status as the laptop went live");

        // Only what changed after its ready: the phone's earlier steps are not replayed after it.
        await phone.SendAsync(new { type = "presence", presenceStatus = "online" });
        Assert.That((await b.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("online"));
        var heard = await laptop.CollectAsync(TimeSpan.FromMilliseconds(400), PresenceOf(alice));
        Assert.That(heard.Select(f => f.Str("presenceStatus")), Is.EqualTo(new[] { "online" }));
    }

    [Test]
    public async Task A_device_that_drops_during_its_catch_up_while_another_is_live_changes_nothing_for_the_others()
    {
        var (alice, b, conversation, laptop, phone) = await LaptopStalledInCatchupAndPhoneLiveAsync();

        laptop.Abort();
        var registry = Gateway.Services.GetRequiredService<ConnectionRegistry>();
        await Eventually.TrueAsync(() => registry.Connections().Count(c => c.UserId == alice.Id) == 1, "the gateway let the laptop go");
        Assert.That(await Gateway.PresenceShownOverHttpAsync(conversation, alice, alice), Is.EqualTo("online"));

        await phone.CloseAsync();
        Assert.That((await b.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("offline"), "nothing came between online and offline");
    }

    // A browser that closes keeps reading until the server's close: the catch-up could run to its end and the device
    // become live just before its session ended, and Bob saw Alice come online and go offline at once.
    [Test]
    public async Task A_first_device_that_closes_during_its_catch_up_is_never_announced_and_gets_no_more_of_it()
    {
        var (alice, b, _) = await AliceWithALongCatchupAsync();
        var laptop = Track(await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(alice.ExternalId), receiveBufferBytes: 4096));
        laptop.PauseReading();
        var registry = Gateway.Services.GetRequiredService<ConnectionRegistry>();
        await Eventually.TrueAsync(() => registry.Connections().Any(c => c.UserId == alice.Id), "the laptop is in its catch-up");

        var closing = laptop.CloseAsync();
        laptop.ResumeReading();
        await closing;

        Assert.That(laptop.CloseStatus, Is.EqualTo(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure));
        var received = laptop.ReceivedBeforeClose();
        Assert.That(received.Select(f => f.Type()), Has.None.EqualTo("ready"), "the catch-up stopped at the close");
        Assert.That(received, Has.Count.LessThan(CatchupMessages));
        Assert.That(await b.CollectAsync(TimeSpan.FromMilliseconds(500), PresenceOf(alice)), Is.Empty, "Alice never came online");
    }
}
