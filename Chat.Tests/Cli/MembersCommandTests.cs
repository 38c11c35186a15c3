using System.Net.Http.Json;
using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Cli;

public sealed class MembersCommandTests : GatewayTest
{
    private Task<CliResult> RunAsAsync(TestUser user, params string[] args) =>
        CliRun.RunAsync([.. args, "--as", user.ExternalId, "--url", Gateway.HttpAddress.ToString()]);

    [Test]
    public async Task Members_add_adds_a_user_live_and_says_so_and_a_second_add_says_they_are_a_member_already()
    {
        var (alice, bob, dave) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("dave"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob, await Gateway.CreateUserAsync());
        var d = await ConnectAsync(dave);

        var added = await RunAsAsync(alice, "members", "add", $"{conversation}", dave.ExternalId);
        var again = await RunAsAsync(alice, "members", "add", $"{conversation}", dave.ExternalId);

        Assert.That((added.Exit, added.Output.Trim()), Is.EqualTo((0, $"added {dave.Name} ({dave.ExternalId}) to conversation {conversation}.")), added.ToString());
        Assert.That((again.Exit, again.Output.Trim()), Is.EqualTo((0, $"{dave.Name} ({dave.ExternalId}) is already a member of conversation {conversation}.")), again.ToString());
        var joined = await d.NextAsync("member");
        Assert.That((joined.Long("conversationId"), joined.Long("userId"), joined.Str("change")), Is.EqualTo((conversation, dave.Id, "joined")));
    }

    [Test]
    public async Task Members_remove_removes_a_member_live_and_a_non_member_is_one_line_with_exit_1()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var c = await ConnectAsync(carol);

        var removed = await RunAsAsync(alice, "members", "remove", $"{conversation}", carol.ExternalId);
        var again = await RunAsAsync(alice, "members", "remove", $"{conversation}", carol.ExternalId);

        Assert.That((removed.Exit, removed.Output.Trim()), Is.EqualTo((0, $"removed {carol.ExternalId} from conversation {conversation}.")), removed.ToString());
        Assert.That((await c.NextAsync("member")).Str("change"), Is.EqualTo("left"));
        Assert.That(again.Exit, Is.EqualTo(1), again.ToString());
        Assert.That(again.Error, Is.EqualTo($"chat members remove: {carol.ExternalId} is not a member of conversation {conversation} (HTTP 404), or you are not a member of it."));
    }

    [Test]
    public async Task A_direct_conversation_refuses_an_added_member_and_the_removal_of_the_other_person_each_in_one_line()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var conversation = (await (await http.PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { bob.ExternalId } }))
            .Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId");

        var add = await RunAsAsync(alice, "members", "add", $"{conversation}", "someone-else");
        var remove = await RunAsAsync(alice, "members", "remove", $"{conversation}", bob.ExternalId);
        var leave = await RunAsAsync(alice, "members", "remove", $"{conversation}", alice.ExternalId);

        Assert.That(add.Exit, Is.EqualTo(1), add.ToString());
        Assert.That(add.Error, Does.StartWith($"chat members add: conversation {conversation} takes no more members (HTTP 409): Conversation {conversation} is a direct conversation"));
        Assert.That(remove.Exit, Is.EqualTo(1), remove.ToString());
        Assert.That(remove.Error, Does.StartWith($"chat members remove: only {bob.ExternalId} can leave direct conversation {conversation} (HTTP 403)"));
        Assert.That((leave.Exit, leave.Output.Trim()), Is.EqualTo((0, $"removed {alice.ExternalId} from conversation {conversation}.")), leave.ToString());
    }

    [TestCase("add")]
    [TestCase("remove")]
    public async Task A_missing_member_is_a_usage_error_with_exit_2(string verb)
    {
        var alice = await Gateway.CreateUserAsync("alice");

        var result = await RunAsAsync(alice, "members", verb, "1");

        Assert.That(result.Exit, Is.EqualTo(2), result.ToString());
        Assert.That(result.Error, Does.Contain("name the member: <conversationId> <externalId>"));
    }
}
