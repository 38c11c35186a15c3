using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

public sealed class TypingTests : GatewayTest
{
    protected override Dictionary<string, string?> Settings => new() { ["Chat:Limits:TypingTimeout"] = "00:00:01" };

    [Test]
    public async Task Typing_that_is_not_renewed_expires_on_its_own()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);

        await a.SendAsync(new { type = "typing", conversationId = conversation });
        await b.NextAsync("typing");
        var lapsed = await b.NextAsync("typing", TimeSpan.FromSeconds(4));

        Assert.That(lapsed.GetProperty("isTyping").GetBoolean(), Is.False);
        Assert.That(lapsed.Long("senderId"), Is.EqualTo(alice.Id));
        Assert.That(a.State, Is.EqualTo(System.Net.WebSockets.WebSocketState.Open), "the typist stays connected");
    }

    [Test]
    public async Task Sending_the_message_ends_typing()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        await a.SendAsync(new { type = "typing", conversationId = conversation });
        await b.NextAsync("typing");

        await a.SendMessageAsync(conversation, "done typing");

        var frames = await b.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() is "typing" or "message");
        Assert.That(frames.Select(f => f.Type()), Is.EquivalentTo(new[] { "message", "typing" }));
        Assert.That(frames.Single(f => f.Type() == "typing").GetProperty("isTyping").GetBoolean(), Is.False);
    }

    /// <summary>Alice typing to Bob from two devices, on a gateway whose typing lapses only after 10 s.</summary>
    private sealed record TwoDevices(TestGateway Gateway, TestUser Alice, long Conversation, ChatTestClient Bob, ChatTestClient Phone, ChatTestClient Laptop)
        : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Bob.DisposeAsync();
            await Phone.DisposeAsync();
            await Laptop.DisposeAsync();
            await Gateway.DisposeAsync();
        }
    }

    private static async Task<TwoDevices> AliceTypingOnPhoneAndLaptopAsync()
    {
        var gateway = new TestGateway(new() { ["Chat:Limits:TypingTimeout"] = "00:00:10" }).Start();
        var (alice, bob) = (await gateway.CreateUserAsync("alice"), await gateway.CreateUserAsync("bob"));
        var conversation = await gateway.CreateConversationAsync(alice, bob);
        var devices = new TwoDevices(gateway, alice, conversation, await gateway.ConnectAsync(bob), await gateway.ConnectAsync(alice), await gateway.ConnectAsync(alice));
        await devices.Phone.SendAsync(new { type = "typing", conversationId = conversation });
        await devices.Laptop.SendAsync(new { type = "typing", conversationId = conversation });
        await devices.Bob.NextAsync(f => f.Type() == "typing" && f.GetProperty("isTyping").GetBoolean());
        await devices.Bob.NextAsync(f => f.Type() == "typing" && f.GetProperty("isTyping").GetBoolean());
        return devices;
    }

    // A message from one device ends the user's typing there, though another device of theirs was typing too: the
    // others would otherwise see "typing" under the message until that device's typing lapsed.
    [Test]
    public async Task A_message_from_one_device_ends_the_users_typing_begun_on_another()
    {
        await using var devices = await AliceTypingOnPhoneAndLaptopAsync();
        var (alice, conversation, b, phone, laptop) = (devices.Alice, devices.Conversation, devices.Bob, devices.Phone, devices.Laptop);

        await laptop.SendMessageAsync(conversation, "sent from the laptop");

        var frames = await b.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() is "typing" or "message");
        Assert.That(frames.Select(f => f.Type()), Is.EqualTo(new[] { "message", "typing" }));
        Assert.That((frames[1].Long("senderId"), frames[1].GetProperty("isTyping").GetBoolean()), Is.EqualTo((alice.Id, false)));
    }

    // A typing frame names the user, not the device: one device's stop while another still types would say the user
    // stopped. The last device to stop says it.
    [Test]
    public async Task Typing_is_shown_per_user_a_device_that_stops_while_another_types_says_nothing()
    {
        await using var devices = await AliceTypingOnPhoneAndLaptopAsync();
        var (alice, conversation, b, phone, laptop) = (devices.Alice, devices.Conversation, devices.Bob, devices.Phone, devices.Laptop);

        await phone.SendAsync(new { type = "typing", conversationId = conversation, isTyping = false });
        await phone.DisposeAsync();
        Assert.That(await b.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() == "typing"), Is.Empty,
            "the laptop is still typing: neither the phone's stop nor its leaving says otherwise");

        await laptop.SendAsync(new { type = "typing", conversationId = conversation, isTyping = false });
        var stopped = await b.NextAsync("typing");
        Assert.That((stopped.Long("senderId"), stopped.GetProperty("isTyping").GetBoolean()), Is.EqualTo((alice.Id, false)));
    }

    [Test]
    public async Task Typing_reaches_the_other_members_but_not_the_typist()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);

        await a.SendAsync(new { type = "typing", conversationId = conversation });
        var typing = await b.NextAsync("typing");
        await a.SendAsync(new { type = "typing", conversationId = conversation, isTyping = false });
        var stopped = await b.NextAsync("typing");

        Assert.That(typing.Long("conversationId"), Is.EqualTo(conversation));
        Assert.That(typing.Long("senderId"), Is.EqualTo(alice.Id));
        Assert.That(typing.Str("senderName"), Is.EqualTo(alice.Name));
        Assert.That(typing.GetProperty("isTyping").GetBoolean(), Is.True, "isTyping defaults to true");
        Assert.That(stopped.GetProperty("isTyping").GetBoolean(), Is.False);
        Assert.That(await a.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() == "typing"), Is.Empty);
    }

    [Test]
    public async Task A_non_member_cannot_send_typing()
    {
        var (alice, bob, mallory) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var m = await ConnectAsync(mallory);

        await m.SendAsync(new { type = "typing", conversationId = conversation });

        var error = await m.NextAsync("error");
        Assert.That(error.Str("code"), Is.EqualTo("access_denied"));
        Assert.That(await b.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() == "typing"), Is.Empty);
    }

    [Test]
    public async Task A_connection_that_closes_while_typing_stops_typing_for_the_others()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var first = await Gateway.CreateConversationAsync(alice, bob);
        var second = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var a = await Gateway.ConnectAsync(alice);
        await a.SendAsync(new { type = "typing", conversationId = first, isTyping = true });
        await a.SendAsync(new { type = "typing", conversationId = second, isTyping = true });
        await b.NextAsync("typing");
        await b.NextAsync("typing");

        a.Abort();
        await a.DisposeAsync();

        var stops = new[] { await b.NextAsync("typing"), await b.NextAsync("typing") };
        Assert.That(stops.Select(s => s.GetProperty("isTyping").GetBoolean()), Is.All.False);
        Assert.That(stops.Select(s => s.Long("conversationId")), Is.EquivalentTo(new[] { first, second }));
        Assert.That(stops.Select(s => s.Long("senderId")), Is.All.EqualTo(alice.Id));
    }
}
