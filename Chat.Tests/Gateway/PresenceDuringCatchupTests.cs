using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Reflection;
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

    // The laptop's catch-up cannot read the messages table, so it is certainly not live when the phone closes.
    [Test]
    public async Task The_last_live_device_that_closes_while_another_is_in_its_catch_up_records_when_the_user_was_last_seen()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var phone = await ConnectAsync(alice);
        Assert.That((await b.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("online"));
        var closed = Gateway.Services.GetRequiredService<Chat.Core.Metrics.ChatMetrics>().ConnectionsClosed;

        await using (await Sql.HoldAsync("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE", new { }))
        {
            var laptop = Track(await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(alice.ExternalId)));
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() == 1, "the laptop's catch-up waits for the messages table");
            var closedBefore = closed.Total;

            await phone.CloseAsync();
            Assert.That((await b.NextAsync(PresenceOf(alice))).Str("presenceStatus"), Is.EqualTo("offline"));
            await Eventually.TrueAsync(() => closed.Total == closedBefore + 1, "the phone's session has ended");

            using var http = Gateway.CreateHttpClient(bob.ExternalId);
            var detail = await http.GetFromJsonAsync<JsonElement>($"/api/conversations/{conversation}");
            var shown = detail.GetProperty("members").EnumerateArray().Single(m => m.Long("userId") == alice.Id);
            Assert.That(shown.Str("presenceStatus"), Is.EqualTo("offline"));
            Assert.That(shown.GetProperty("lastSeenAt").ValueKind, Is.EqualTo(JsonValueKind.String), "offline since the phone closed, and seen then");
            Assert.That(await Sql.LockWaitersAsync(), Is.EqualTo(1), "the laptop is still in its catch-up");
        }
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

    /// <summary>
    /// Alice's laptop, which does not read, at the end of its catch-up with its ready waiting for room: the first
    /// catch-up message, larger than every buffer between the server and the laptop, holds the gateway's writer, and
    /// the second, as large as the queue's half for replays, is queued behind it, so that ready does not fit.
    /// </summary>
    private async Task<(TestUser Alice, ChatTestClient Bob, long Conversation, ChatTestClient Laptop, ChatConnection Held)> LaptopWhoseReadyWaitsForRoomAsync()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        const int Larger = 10 * 1024 * 1024;
        const int HalfQueue = 64 * 1024;
        await Sql.ExecuteAsync("""
            INSERT INTO messages (conversation_id, seq, sender_id, content, client_message_id)
            VALUES (@Conversation, 1, @Sender, repeat('x', @Larger), 'larger'), (@Conversation, 2, @Sender, repeat('x', @HalfQueue), 'half');
            UPDATE conversations SET last_seq = 2 WHERE id = @Conversation;
            """, new { Conversation = conversation, Sender = bob.Id, Larger, HalfQueue });
        var b = await ConnectAsync(bob);
        var laptop = Track(await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(alice.ExternalId), receiveBufferBytes: 4096));
        laptop.PauseReading();

        var registry = Gateway.Services.GetRequiredService<ConnectionRegistry>();
        ChatConnection? held = null;
        // The larger message has left the queue for the socket, where it is stuck, and the other one waits behind it.
        await Eventually.TrueAsync(
            () => (held = registry.Connections().SingleOrDefault(c => c.UserId == alice.Id)) is { QueuedBytes: > HalfQueue and < Larger },
            "the laptop's catch-up is queued to its end");
        return (alice, b, conversation, laptop, held!);
    }

    // The gateway's end of the socket, whose state tells that it has read the client's close: ChatConnection keeps it
    // to itself.
    private static WebSocket ServerSocketOf(ChatConnection connection) =>
        (WebSocket)typeof(ChatConnection).GetField("_socket", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(connection)!;

    // The device went live before its ready found room in the queue: Bob saw Alice come online and go offline, and the
    // laptop received a ready after its close.
    [Test]
    public async Task A_first_device_that_closes_while_its_ready_waits_for_room_is_never_announced_and_gets_no_ready()
    {
        var (alice, b, _, laptop, held) = await LaptopWhoseReadyWaitsForRoomAsync();

        var closing = laptop.CloseAsync();
        await Eventually.TrueAsync(() => ServerSocketOf(held).State == WebSocketState.CloseReceived, "the gateway read the laptop's close");
        laptop.ResumeReading();
        await closing;

        Assert.That(laptop.CloseStatus, Is.EqualTo(WebSocketCloseStatus.NormalClosure));
        Assert.That(laptop.ReceivedBeforeClose().Select(f => f.Type()), Has.None.EqualTo("ready"));
        Assert.That(await b.CollectAsync(TimeSpan.FromMilliseconds(500), PresenceOf(alice)), Is.Empty, "Alice never came online");
    }

    // A close the gateway decides does not change the socket's state until the writer sends it, which a client that
    // does not read holds up: the device went live, and Bob saw Alice come online and go offline.
    [Test]
    public async Task A_first_device_closed_for_frames_held_while_its_ready_waits_for_room_is_never_announced()
    {
        var (alice, b, conversation, laptop, _) = await LaptopWhoseReadyWaitsForRoomAsync();

        // Bob's messages wait for the laptop's ready: the second overflows the half of the queue kept for them.
        var content = new string('y', ContentLength);
        for (var i = 0; i < 2; i++)
        {
            Assert.That((await b.SendMessageAsync(conversation, content)).Type(), Is.EqualTo("ack"));
        }
        var registry = Gateway.Services.GetRequiredService<ConnectionRegistry>();
        await Eventually.TrueAsync(() => registry.Connections().All(c => c.UserId != alice.Id), "the gateway let the laptop go");
        laptop.ResumeReading();
        await laptop.WaitClosedAsync();

        Assert.That((laptop.CloseStatus, laptop.CloseDescription), Is.EqualTo((WebSocketCloseStatus.PolicyViolation, "slow consumer")));
        Assert.That(laptop.ReceivedBeforeClose().Select(f => f.Type()), Has.None.EqualTo("ready"));
        Assert.That(await b.CollectAsync(TimeSpan.FromMilliseconds(500), PresenceOf(alice)), Is.Empty, "Alice never came online");
    }
}
