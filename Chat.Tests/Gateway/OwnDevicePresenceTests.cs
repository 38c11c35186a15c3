using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

/// <summary>
/// A user's status as their own devices learn it (protocol §11, "The user's own devices"): from <c>ready</c>, then
/// from <c>presence</c> frames about themselves, so that a status picker on every device shows the user's status.
/// </summary>
public sealed class OwnDevicePresenceTests : GatewayTest
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(400);

    // The race below sends a status from each device many times in a row.
    protected override Dictionary<string, string?> Settings => new()
    {
        ["Chat:Limits:PresenceRatePerSecond"] = "1000",
        ["Chat:Limits:PresenceBurst"] = "1000",
    };

    private static Func<JsonElement, bool> PresenceOf(TestUser user) =>
        f => f.Type() == "presence" && f.Long("senderId") == user.Id;

    private static async Task<string?[]> StatusesHeardAsync(ChatTestClient device, TestUser user) =>
        [.. (await device.CollectAsync(Quiet, PresenceOf(user))).Select(f => f.Str("presenceStatus"))];

    private static Task SetAsync(ChatTestClient device, string status) => device.SendAsync(new { type = "presence", presenceStatus = status });

    [Test]
    public async Task A_status_set_on_one_device_reaches_the_users_other_devices_and_the_device_that_set_it_gets_no_answer()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync());
        await Gateway.CreateConversationAsync(alice, bob);
        var phone = await ConnectAsync(alice);
        var laptop = await ConnectAsync(alice);
        var tablet = await ConnectAsync(alice, catchup: false);

        await SetAsync(phone, "away");

        foreach (var other in new[] { laptop, tablet })
        {
            var heard = await other.NextAsync(PresenceOf(alice));
            Assert.That(heard.Str("presenceStatus"), Is.EqualTo("away"));
            Assert.That(heard.Str("senderName"), Is.EqualTo(alice.Name));
            Assert.That(await StatusesHeardAsync(other, alice), Is.Empty, "one frame per change");
        }
        Assert.That(await phone.CollectAsync(Quiet), Is.Empty, "the phone knows what it set: no answer");
    }

    [Test]
    public async Task Ready_gives_the_status_another_device_set_and_online_or_offline_as_the_user_stands()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var phone = await ConnectAsync(alice);
        Assert.That(phone.Ready.Str("presenceStatus"), Is.EqualTo("online"), "the first device sets nothing: online");
        await b.NextAsync(PresenceOf(alice));

        await SetAsync(phone, "away");
        Assert.That((await b.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("away"));
        var laptop = await ConnectAsync(alice);
        var withoutCatchup = await ConnectAsync(alice, catchup: false);

        Assert.That(laptop.Ready.Str("presenceStatus"), Is.EqualTo("away"), "a new device starts from the status the phone holds");
        Assert.That(withoutCatchup.Ready.Str("presenceStatus"), Is.EqualTo("away"));

        await SetAsync(laptop, "offline");
        Assert.That((await phone.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("offline"));
        var tablet = await ConnectAsync(alice);
        Assert.That(tablet.Ready.Str("presenceStatus"), Is.EqualTo("offline"), "appearing offline while connected is a status too");
    }

    [Test]
    public async Task Closing_the_device_that_set_the_latest_status_tells_the_remaining_devices_what_is_left()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        await Gateway.CreateConversationAsync(alice, bob);
        var phone = await ConnectAsync(alice);
        var laptop = await ConnectAsync(alice);
        var tablet = await ConnectAsync(alice);
        await SetAsync(phone, "away");
        Assert.That((await tablet.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("away"));
        await SetAsync(laptop, "busy");
        Assert.That(await StatusesHeardAsync(tablet, alice), Is.EqualTo(new[] { "busy" }));

        await laptop.CloseAsync();
        Assert.That(await StatusesHeardAsync(tablet, alice), Is.EqualTo(new[] { "away" }), "the phone's status is the latest left");

        phone.Abort();
        Assert.That(await StatusesHeardAsync(tablet, alice), Is.EqualTo(new[] { "online" }), "a device cut off hands the status on as a closed one does");
    }

    [Test]
    public async Task A_device_that_has_heard_of_another_devices_change_hears_its_own_changes_too()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        await Gateway.CreateConversationAsync(alice, bob);
        var phone = await ConnectAsync(alice);
        var laptop = await ConnectAsync(alice);

        await SetAsync(phone, "away");
        Assert.That(await StatusesHeardAsync(laptop, alice), Is.EqualTo(new[] { "away" }));
        Assert.That(await StatusesHeardAsync(phone, alice), Is.Empty, "the phone has heard nothing of its user's status before");

        // The phone's "away" might have reached the laptop after it sent "busy": repeated, "busy" comes last.
        await SetAsync(laptop, "busy");
        Assert.That(await StatusesHeardAsync(laptop, alice), Is.EqualTo(new[] { "busy" }));
        Assert.That(await StatusesHeardAsync(phone, alice), Is.EqualTo(new[] { "busy" }));

        await SetAsync(phone, "online");
        Assert.That(await StatusesHeardAsync(phone, alice), Is.EqualTo(new[] { "online" }), "the phone has now heard of the laptop's change");
        Assert.That(await StatusesHeardAsync(laptop, alice), Is.EqualTo(new[] { "online" }));

        await SetAsync(phone, "online");
        Assert.That(await StatusesHeardAsync(phone, alice), Is.Empty, "no change, no frame");
        Assert.That(await StatusesHeardAsync(laptop, alice), Is.Empty, "no change, no frame");
    }

    // Each round, the phone and the laptop set different statuses at the same moment. A device shows the status it
    // sent until a frame about its user arrives after that (the conservative reading: frames of the round all arrive
    // after both sends), and the observer shows the last frame it got. After every round all agree with the HTTP API.
    [Test]
    public async Task Two_devices_changing_the_status_at_the_same_moment_leave_every_device_and_observer_with_the_users_status()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var phone = await ConnectAsync(alice);
        var laptop = await ConnectAsync(alice);
        var observed = (await b.NextAsync(PresenceOf(alice))).Str("presenceStatus");
        string[] statuses = ["away", "busy", "online", "offline"];

        for (var round = 0; round < 16; round++)
        {
            var (phoneSets, laptopSets) = (statuses[round % 4], statuses[(round + 1 + round / 4) % 4]);
            if (phoneSets == laptopSets)
            {
                laptopSets = statuses[(round + 2) % 4];
            }

            await Task.WhenAll(SetAsync(phone, phoneSets), SetAsync(laptop, laptopSets));

            var heard = await Task.WhenAll(StatusesHeardAsync(phone, alice), StatusesHeardAsync(laptop, alice), StatusesHeardAsync(b, alice));
            var phoneShows = heard[0].LastOrDefault() ?? phoneSets;
            var laptopShows = heard[1].LastOrDefault() ?? laptopSets;
            observed = heard[2].LastOrDefault() ?? observed;
            var status = await Gateway.PresenceShownOverHttpAsync(conversation, bob, alice);
            var context = $"round {round}: the phone set {phoneSets}, the laptop {laptopSets}; the phone heard [{string.Join(", ", heard[0])}], the laptop [{string.Join(", ", heard[1])}], Bob [{string.Join(", ", heard[2])}]";
            Assert.That(status, Is.EqualTo(phoneSets).Or.EqualTo(laptopSets), context);
            Assert.That(new[] { phoneShows, laptopShows, observed }, Is.All.EqualTo(status), context);
        }
    }
}
