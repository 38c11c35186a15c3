using Chat.Cli;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Cli;

/// <summary>
/// <c>chat connect</c> and the user's own status set on another device (protocol §11): told as the user's, never as
/// news about someone of the user's name.
/// </summary>
public sealed class ConnectOwnStatusTests : GatewayTest
{
    private (TypedInput Keyboard, Screen Screen, Task<int> Exit) Start(TestUser user)
    {
        var (keyboard, screen) = (new TypedInput(), new Screen());
        string[] args = ["connect", "--as", user.ExternalId, "--name", user.Name, "--url", Gateway.HttpAddress.ToString()];
        return (keyboard, screen, Task.Run(() => CliApp.RunAsync(args, keyboard, screen, screen, _ => null, CancellationToken.None)));
    }

    private static async Task EndAsync(TypedInput keyboard, Task<int> exit)
    {
        keyboard.End();
        Assert.That(await Task.WhenAny(exit, Task.Delay(TimeSpan.FromSeconds(10))), Is.SameAs(exit), "chat connect did not end");
        Assert.That(await exit, Is.EqualTo(0));
    }

    [Test]
    public async Task A_status_set_on_another_device_is_shown_as_the_users_own_and_a_status_already_shown_is_not_repeated()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        await Gateway.CreateConversationAsync(alice, bob);
        var (keyboard, screen, exit) = Start(alice);
        await screen.WaitForAsync("* connected.");
        var phone = await ConnectAsync(alice);

        await phone.SendAsync(new { type = "presence", presenceStatus = "away" });
        await screen.WaitForAsync("* your status is now away.");
        // The terminal has heard of the phone's change, so the gateway repeats its own next change to it.
        keyboard.Type("/status busy");
        Assert.That((await phone.NextAsync(f => f.Type() == "presence")).Str("presenceStatus"), Is.EqualTo("busy"));
        await phone.SendAsync(new { type = "presence", presenceStatus = "online" });
        await screen.WaitForAsync("* your status is now online.");

        Assert.That(screen.ToString(), Does.Not.Contain($"{alice.Name} is "), "the user's own status is not told as someone else's");
        Assert.That(screen.ToString(), Does.Not.Contain("your status is now busy"), "what the user set is not told back to them");
        await EndAsync(keyboard, exit);
    }

    [Test]
    public async Task Connecting_while_another_device_holds_a_status_says_so()
    {
        var alice = await Gateway.CreateUserAsync("alice");
        var conversation = await Gateway.CreateConversationAsync(alice, await Gateway.CreateUserAsync());
        var phone = await ConnectAsync(alice);
        await phone.SendAsync(new { type = "presence", presenceStatus = "away" });
        // Frames of one socket are handled in order: the status is set once the message after it is answered.
        Assert.That((await phone.SendMessageAsync(conversation, "after")).Type(), Is.EqualTo("ack"));

        var (keyboard, screen, exit) = Start(alice);

        await screen.WaitForAsync("* your status is away, as another device of yours set it.");
        await EndAsync(keyboard, exit);
    }
}
