using System.Net.Http.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

public sealed class PresenceTests : GatewayTest
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(400);

    private static Func<System.Text.Json.JsonElement, bool> PresenceOf(TestUser user) =>
        f => f.Type() == "presence" && f.Long("senderId") == user.Id;

    [Test]
    public async Task Coming_online_is_announced_once_to_each_connection_however_many_conversations_are_shared()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        await Gateway.CreateConversationAsync(alice, bob);
        await Gateway.CreateConversationAsync(alice, bob);
        await Gateway.CreateConversationAsync(alice, bob);
        var bobPhone = await ConnectAsync(bob);
        var bobLaptop = await ConnectAsync(bob);

        await ConnectAsync(alice);

        foreach (var device in new[] { bobPhone, bobLaptop })
        {
            var announcements = await device.CollectAsync(Quiet, PresenceOf(alice));
            Assert.That(announcements, Has.Count.EqualTo(1));
            Assert.That(announcements[0].Str("presenceStatus"), Is.EqualTo("online"));
            Assert.That(announcements[0].Str("senderName"), Is.EqualTo(alice.Name));
        }
    }

    [Test]
    public async Task A_second_device_is_not_announced_and_closing_one_of_two_devices_is_not_offline()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var phone = await Gateway.ConnectAsync(alice);
        await b.NextAsync(PresenceOf(alice));

        var laptop = await ConnectAsync(alice);
        Assert.That(await b.CollectAsync(Quiet, PresenceOf(alice)), Is.Empty, "a second device changes nothing");

        await phone.CloseAsync();
        await phone.DisposeAsync();
        Assert.That(await b.CollectAsync(Quiet, PresenceOf(alice)), Is.Empty, "alice is still online on her laptop");

        await laptop.CloseAsync();
        var offline = await b.NextAsync(PresenceOf(alice));
        Assert.That(offline.Str("presenceStatus"), Is.EqualTo("offline"));
        var lastSeen = await Sql.ScalarAsync<DateTime?>("SELECT last_seen_at FROM user_profiles WHERE id = @id", new { id = alice.Id });
        Assert.That(lastSeen, Is.Not.Null);
    }

    [Test]
    public async Task A_users_status_is_the_one_most_recently_set_on_any_device()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var phone = await ConnectAsync(alice);
        var laptop = await ConnectAsync(alice);
        await b.NextAsync(PresenceOf(alice));

        await phone.SendAsync(new { type = "presence", presenceStatus = "away" });
        Assert.That((await b.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("away"));

        await laptop.SendAsync(new { type = "presence", presenceStatus = "busy" });
        Assert.That((await b.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("busy"));

        await laptop.SendAsync(new { type = "presence", presenceStatus = "busy" });
        Assert.That(await b.CollectAsync(Quiet, PresenceOf(alice)), Is.Empty, "no change, no announcement");
        // Each device hears of the other's change; the laptop, having heard of the phone's, hears its own too (§11).
        Assert.That(await StatusesHeardAsync(phone, alice), Is.EqualTo(new[] { "busy" }));
        Assert.That(await StatusesHeardAsync(laptop, alice), Is.EqualTo(new[] { "away", "busy" }));

        // The laptop set the latest status; when it goes, the phone's earlier "away" is what remains.
        await laptop.CloseAsync();
        Assert.That((await b.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("away"));
    }

    private static async Task<string?[]> StatusesHeardAsync(ChatTestClient observer, TestUser user) =>
        [.. (await observer.CollectAsync(Quiet, PresenceOf(user))).Select(f => f.Str("presenceStatus"))];

    // Every change of the aggregate is heard exactly once, and nothing else: a device that repeats the status in
    // force says nothing, and a device that goes, closed or cut off, hands the status to the latest one left.
    [Test]
    public async Task With_three_devices_each_change_of_the_users_status_is_heard_once_and_the_http_api_shows_the_same()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var phone = await ConnectAsync(alice);
        var laptop = await ConnectAsync(alice);
        var tablet = await ConnectAsync(alice);
        Assert.That(await StatusesHeardAsync(b, alice), Is.EqualTo(new[] { "online" }));

        // One device after the other: frames of different connections are handled side by side, in no set order.
        foreach (var (device, status) in new[] { (phone, "away"), (laptop, "busy"), (tablet, "online") })
        {
            await device.SendAsync(new { type = "presence", presenceStatus = status });
            Assert.That(await StatusesHeardAsync(b, alice), Is.EqualTo(new[] { status }));
        }
        await tablet.SendAsync(new { type = "presence", presenceStatus = "online" });
        await phone.SendAsync(new { type = "presence", presenceStatus = "online" });
        Assert.That(await StatusesHeardAsync(b, alice), Is.Empty, "the status in force, set again, is no change");

        await phone.SendAsync(new { type = "presence", presenceStatus = "away" });
        Assert.That(await StatusesHeardAsync(b, alice), Is.EqualTo(new[] { "away" }));
        await phone.CloseAsync();
        Assert.That(await StatusesHeardAsync(b, alice), Is.EqualTo(new[] { "online" }), "the tablet set its status after the laptop");
        Assert.That(await Gateway.PresenceShownOverHttpAsync(conversation, bob, alice), Is.EqualTo("online"));

        tablet.Abort();
        Assert.That(await StatusesHeardAsync(b, alice), Is.EqualTo(new[] { "busy" }), "a device cut off hands the status on as a closed one does");
        Assert.That(await Gateway.PresenceShownOverHttpAsync(conversation, bob, alice), Is.EqualTo("busy"));
        Assert.That(await Gateway.PresenceShownOverHttpAsync(conversation, alice, alice), Is.EqualTo("busy"));

        await laptop.CloseAsync();
        Assert.That(await StatusesHeardAsync(b, alice), Is.EqualTo(new[] { "offline" }));
        Assert.That(await Gateway.PresenceShownOverHttpAsync(conversation, bob, alice), Is.EqualTo("offline"));
    }

    [Test]
    public async Task A_status_lasts_as_long_as_the_connection_that_set_it()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var laptop = await ConnectAsync(alice);
        var phone = await Gateway.ConnectAsync(alice);
        await phone.SendAsync(new { type = "presence", presenceStatus = "busy" });
        Assert.That(await StatusesHeardAsync(b, alice), Is.EqualTo(new[] { "online", "busy" }));

        // The phone changes networks: its new connection has not chosen a status until it sends it again.
        phone.Abort();
        await phone.DisposeAsync();
        phone = await ConnectAsync(alice);
        Assert.That(await StatusesHeardAsync(b, alice), Is.EqualTo(new[] { "online" }));
        await phone.SendAsync(new { type = "presence", presenceStatus = "busy" });
        Assert.That(await StatusesHeardAsync(b, alice), Is.EqualTo(new[] { "busy" }));
        Assert.That(laptop.State, Is.EqualTo(System.Net.WebSockets.WebSocketState.Open));
    }

    [Test]
    public async Task Presence_does_not_reach_users_who_share_no_conversation()
    {
        var (alice, bob, stranger) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        await Gateway.CreateConversationAsync(alice, bob);
        await Gateway.CreateConversationAsync(stranger, bob);
        var s = await ConnectAsync(stranger);

        var a = await ConnectAsync(alice);
        await a.SendAsync(new { type = "presence", presenceStatus = "away" });

        Assert.That(await s.CollectAsync(Quiet, PresenceOf(alice)), Is.Empty);
    }

    [Test]
    public async Task Presence_follows_membership_a_removed_member_stops_hearing_it_and_an_added_one_starts()
    {
        var (alice, bob, carol, dave) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        var c = await ConnectAsync(carol);
        var d = await ConnectAsync(dave);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        (await http.DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}")).EnsureSuccessStatusCode();
        (await http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = dave.ExternalId })).EnsureSuccessStatusCode();
        await c.NextAsync("member");
        await d.NextAsync("member");

        await a.SendAsync(new { type = "presence", presenceStatus = "away" });

        Assert.That((await d.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("away"));
        Assert.That(await c.CollectAsync(Quiet, PresenceOf(alice)), Is.Empty, "Carol shares no conversation with Alice any more");
    }
}
