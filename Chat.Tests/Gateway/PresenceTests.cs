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

        // The laptop set the latest status; when it goes, the phone's earlier "away" is what remains.
        await laptop.CloseAsync();
        Assert.That((await b.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("away"));
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
}
