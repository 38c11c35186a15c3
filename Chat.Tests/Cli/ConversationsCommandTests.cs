using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Cli;

public sealed partial class ConversationsCommandTests : GatewayTest
{
    private Task<CliResult> RunAsAsync(string externalId, params string[] args) =>
        CliRun.RunAsync([.. args, "--as", externalId, "--url", Gateway.HttpAddress.ToString()]);

    private static string Fresh(string name) => $"{name}-{Guid.NewGuid():N}"[..20];

    [Test]
    public async Task Conversations_create_prints_the_new_conversation_and_its_members()
    {
        string alice = Fresh("alice"), bob = Fresh("bob"), carol = Fresh("carol");

        var result = await RunAsAsync(alice, "conversations", "create", "--title", "Weekend", bob, carol);

        Assert.That(result.Exit, Is.EqualTo(0), result.ToString());
        var match = Created().Match(result.Output);
        Assert.That(match.Success, Is.True, result.Output);
        Assert.That(result.Output, Does.Contain("\"Weekend\" (group, 3 members: "));
        Assert.That(result.Output, Does.Contain(alice).And.Contain(bob).And.Contain(carol));
        using var http = Gateway.CreateHttpClient(bob);
        var detail = await http.GetFromJsonAsync<JsonElement>($"/api/conversations/{match.Groups[1].Value}");
        Assert.That(detail.GetProperty("title").GetString(), Is.EqualTo("Weekend"));
    }

    [Test]
    public async Task Conversations_create_for_the_same_two_people_again_shows_the_existing_direct_conversation()
    {
        string alice = Fresh("alice"), bob = Fresh("bob");

        var first = await RunAsAsync(alice, "conversations", "create", bob);
        var second = await RunAsAsync(bob, "conversations", "create", alice);

        Assert.That(first.Output, Does.Match(@"^created conversation \d+ \(direct, 2 members: "), first.ToString());
        var id = Created().Match(first.Output).Groups[1].Value;
        Assert.That(second.Output, Does.StartWith($"already exists: conversation {id} (direct, 2 members: "), second.ToString());
    }

    [Test]
    public async Task Conversations_create_with_json_prints_the_gateways_answer()
    {
        var result = await RunAsAsync(Fresh("alice"), "conversations", "create", "--group", "--json", Fresh("bob"));

        Assert.That(result.Exit, Is.EqualTo(0), result.ToString());
        using var answer = JsonDocument.Parse(result.Output);
        Assert.That(answer.RootElement.GetProperty("isGroup").GetBoolean(), Is.True);
        Assert.That(answer.RootElement.GetProperty("members").GetArrayLength(), Is.EqualTo(2));
    }

    [Test]
    public async Task Conversations_create_names_the_field_the_gateway_refused()
    {
        var result = await RunAsAsync(Fresh("alice"), "conversations", "create", "--title", new string('t', 201), Fresh("bob"));

        Assert.That(result.Exit, Is.EqualTo(2), "a value of the command line refused: a bad command line");
        Assert.That(result.Error.TrimEnd(), Is.EqualTo("chat conversations create: POST /api/conversations answered HTTP 400 BadRequest: title must be at most 200 characters. Run 'chat conversations create --help' for usage."),
            "the gateway's detail names the field; it is said once");
    }

    [Test]
    public async Task Conversations_list_with_a_cursor_the_gateway_never_gave_is_a_bad_command_line()
    {
        var result = await RunAsAsync(Fresh("alice"), "conversations", "list", "--cursor", "not-a-cursor");

        Assert.That(result.Exit, Is.EqualTo(2), result.ToString());
        Assert.That(result.Error, Does.Contain("cursor is not a cursor this API returned.").And.Contain("Run 'chat conversations list --help' for usage."));
    }

    [Test]
    public async Task Conversations_list_shows_the_title_members_unread_count_and_last_message()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        var id = Created().Match((await RunAsAsync(alice.ExternalId, "conversations", "create", "--title", "Plans", bob.ExternalId)).Output).Groups[1].Value;
        var bobClient = await ConnectAsync(bob);
        await bobClient.SendMessageAsync(long.Parse(id), "see you at noon");
        await bobClient.SendMessageAsync(long.Parse(id), "bring the map");

        var result = await RunAsAsync(alice.ExternalId, "conversations", "list");

        Assert.That(result.Exit, Is.EqualTo(0), result.ToString());
        var lines = result.Output.Split('\n').Select(l => l.TrimEnd()).ToArray();
        Assert.That(lines[0], Does.Match("^ID +TITLE +KIND +MEMBERS +UNREAD +LAST MESSAGE$"));
        Assert.That(lines[1], Does.Match($@"^{id} +Plans +direct +{alice.ExternalId}, {bob.ExternalId} +2 +#2 \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d {bob.Name}: bring the map$"));
        Assert.That(lines, Has.Length.EqualTo(2));
    }

    [Test]
    public async Task Conversations_list_lines_up_its_columns_when_a_title_has_wide_characters()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        await RunAsAsync(alice.ExternalId, "conversations", "create", "--title", "Plans", bob.ExternalId);
        await RunAsAsync(alice.ExternalId, "conversations", "create", "--title", "週末の予定", carol.ExternalId);

        var result = await RunAsAsync(alice.ExternalId, "conversations", "list");

        Assert.That(result.Exit, Is.EqualTo(0), result.ToString());
        var lines = result.Output.Split('\n').Where(l => l.Length > 0).ToArray();
        // Five ideographs take ten columns in a terminal: "Plans" is padded to ten, the wide title not at all.
        Assert.That(lines.Single(l => l.Contains("週末の予定")), Does.Contain("週末の予定  direct"));
        Assert.That(lines.Single(l => l.Contains("Plans")), Does.Contain("Plans       direct"));
        Assert.That(lines[0], Does.Contain("TITLE       KIND"));
    }

    [Test]
    public async Task Conversations_list_names_a_large_groups_first_members_and_counts_the_rest()
    {
        var users = await Gateway.CreateUsersAsync(13);
        await Gateway.CreateConversationAsync(users);

        var result = await RunAsAsync(users[0].ExternalId, "conversations", "list");

        Assert.That(result.Exit, Is.EqualTo(0), result.ToString());
        var firstTen = string.Join(", ", users.OrderBy(u => u.Id).Take(10).Select(u => u.ExternalId));
        Assert.That(result.Output, Does.Contain($"{firstTen} and 3 more "));
    }

    [Test]
    public async Task Conversations_list_pages_with_the_cursor_it_prints()
    {
        var alice = Fresh("alice");
        for (var i = 0; i < 3; i++)
        {
            await RunAsAsync(alice, "conversations", "create", "--title", $"page-{i}", "--group", Fresh("bob"));
        }

        var first = await RunAsAsync(alice, "conversations", "list", "--limit", "2");
        var cursor = first.Output.Split('\n')[^1].Trim();
        Assert.That(cursor, Does.StartWith("more: --cursor "), first.ToString());
        var second = await RunAsAsync(alice, "conversations", "list", "--limit", "2", "--cursor", cursor["more: --cursor ".Length..]);

        Assert.That(first.Output, Does.Contain("page-2").And.Contain("page-1").And.Not.Contain("page-0"));
        Assert.That(second.Output, Does.Contain("page-0").And.Not.Contain("page-1").And.Not.Contain("more:"));
    }

    [Test]
    public async Task Conversations_list_for_a_new_user_says_there_are_none()
    {
        var result = await RunAsAsync(Fresh("nobody"), "conversations", "list");

        Assert.That((result.Exit, result.Output), Is.EqualTo((0, "no conversations.")));
    }

    [Test]
    public async Task History_prints_messages_in_seq_order_with_edits_and_tombstones()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        var conversationId = await Gateway.CreateConversationAsync(alice, bob);
        var client = await ConnectAsync(alice);
        var ids = new List<long>();
        foreach (var text in new[] { "one", "two", "three" })
        {
            ids.Add((await client.SendMessageAsync(conversationId, text)).Long("messageId"));
        }
        await client.SendAsync(new { type = "edit", conversationId, messageId = ids[2], content = "three, corrected" });
        await client.NextAsync("messageEdited");
        await client.SendAsync(new { type = "delete", conversationId, messageId = ids[1] });
        await client.NextAsync("messageDeleted");

        var result = await RunAsAsync(bob.ExternalId, "history", conversationId.ToString());

        Assert.That(result.Exit, Is.EqualTo(0), result.ToString());
        var lines = result.Output.Split('\n').Select(l => l.TrimEnd()).ToArray();
        Assert.That(lines, Has.Length.EqualTo(3));
        Assert.That(lines[0], Does.Match($@"^#1  \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d  {alice.Name}: one$"));
        Assert.That(lines[1], Does.EndWith($"  {alice.Name}: (deleted)").And.StartWith("#2  "));
        Assert.That(lines[2], Does.EndWith($"  {alice.Name}: three, corrected (edited)").And.StartWith("#3  "));
    }

    [Test]
    public async Task History_and_the_list_show_control_characters_of_other_users_escaped_so_they_cannot_forge_lines_or_drive_the_terminal()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        var conversationId = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        await b.SendMessageAsync(conversationId, $"line one\n#99  2026-12-04 22:00:00  {alice.Name}: I owe Bob $100");
        await b.SendMessageAsync(conversationId, "evil \u001b[31mRED\u001b[0m \u001b]0;pwned\u0007 bell \u202eevil");

        var history = await RunAsAsync(alice.ExternalId, "history", conversationId.ToString());
        var list = await RunAsAsync(alice.ExternalId, "conversations", "list");

        var lines = history.Output.TrimEnd('\n').Split('\n');
        Assert.That(lines, Has.Length.EqualTo(2), history.ToString());
        Assert.That(lines[0], Does.EndWith($": line one\\n#99  2026-12-04 22:00:00  {alice.Name}: I owe Bob $100"));
        Assert.That(lines[1], Does.EndWith(@": evil \u001b[31mRED\u001b[0m \u001b]0;pwned\u0007 bell \u202eevil"));
        Assert.That(list.Output, Does.Contain(@"evil \u001b[31mRED"));
        Assert.That((history.Output + list.Output).Where(c => c != '\n' && (char.IsControl(c) || c == '\u202e')), Is.Empty);
    }

    [Test]
    public async Task Conversations_list_shortens_a_long_last_message_without_cutting_an_emoji_in_half()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        var conversationId = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        // The emoji is two UTF-16 code units, and the list's cut falls between them.
        await b.SendMessageAsync(conversationId, new string('a', 46) + "\U0001F389" + new string('b', 20));

        var list = await RunAsAsync(alice.ExternalId, "conversations", "list");

        Assert.That(list.Exit, Is.EqualTo(0), list.ToString());
        Assert.That(list.Output, Does.Contain($"{bob.Name}: {new string('a', 46)}…"), list.ToString());
        // Half a surrogate pair is not text: written out as UTF-8 it becomes U+FFFD, shown as garbage.
        Assert.That(list.Output.EnumerateRunes(), Does.Not.Contain(Rune.ReplacementChar));
    }

    [Test]
    public async Task A_url_with_a_path_no_gateway_serves_is_named_as_the_likely_mistake_not_as_a_missing_conversation()
    {
        var url = new Uri(Gateway.HttpAddress, "/chat").ToString();

        var list = await CliRun.RunAsync("conversations", "list", "--as", "alice", "--url", url);
        var history = await CliRun.RunAsync("history", "3", "--as", "alice", "--url", url);

        Assert.That(list.Exit, Is.EqualTo(1));
        Assert.That(list.Error, Is.EqualTo($"chat conversations list: {url}/api/conversations answered HTTP 404 from no endpoint: is --url the address of a RealtimeChat gateway (with no extra path)?"));
        Assert.That(history.Error, Does.Contain($"{url}/api/conversations/3/messages answered HTTP 404 from no endpoint"));
    }

    [Test]
    public async Task A_name_longer_than_the_gateway_accepts_is_a_usage_error_not_a_refused_token()
    {
        var connect = await CliRun.RunAsync("conversations", "list", "--as", "alice", "--name", new string('n', 201), "--url", Gateway.HttpAddress.ToString());
        var token = await CliRun.RunAsync("token", new string('q', 257));

        Assert.That((connect.Exit, token.Exit), Is.EqualTo((2, 2)));
        Assert.That(connect.Error, Does.Contain("--name is 201 characters long; the gateway refuses a token whose value is longer than 200."));
        Assert.That(token.Error, Does.Contain("the external user id is 257 characters long"));
    }

    [Test]
    public async Task History_pages_back_with_before_and_forward_with_after()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        var conversationId = await Gateway.CreateConversationAsync(alice, bob);
        var client = await ConnectAsync(alice);
        for (var i = 1; i <= 5; i++)
        {
            await client.SendMessageAsync(conversationId, $"m{i}");
        }

        var newest = await RunAsAsync(bob.ExternalId, "history", conversationId.ToString(), "--limit", "2");
        var older = await RunAsAsync(bob.ExternalId, "history", conversationId.ToString(), "--limit", "2", "--before", "4");
        var forward = await RunAsAsync(bob.ExternalId, "history", conversationId.ToString(), "--limit", "2", "--after", "3");

        Assert.That(Seqs(newest.Output), Is.EqualTo(new[] { "#4", "#5" }), newest.ToString());
        Assert.That(newest.Output, Does.EndWith("older: --before 4"));
        Assert.That(Seqs(older.Output), Is.EqualTo(new[] { "#2", "#3" }), older.ToString());
        Assert.That(Seqs(forward.Output), Is.EqualTo(new[] { "#4", "#5" }), forward.ToString());
        Assert.That(forward.Output, Does.Not.Contain("more:"));
    }

    [Test]
    public async Task History_of_a_conversation_the_caller_is_not_in_is_not_found()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        var conversationId = await Gateway.CreateConversationAsync(alice, bob);

        var result = await RunAsAsync(Fresh("mallory"), "history", conversationId.ToString());

        Assert.That(result.Exit, Is.EqualTo(1));
        Assert.That(result.Output, Is.Empty);
        Assert.That(result.Error, Is.EqualTo($"chat history: conversation {conversationId} not found (HTTP 404): it does not exist or you are not a member of it."));
    }

    [TestCase("conversations list")]
    [TestCase("conversations create", "bob")]
    [TestCase("history", "1")]
    [TestCase("connect")]
    public async Task A_gateway_that_is_down_is_one_line_naming_its_url(string command, params string[] rest)
    {
        var url = CliRun.DeadUrl();

        var result = await CliRun.RunAsync([.. command.Split(' '), .. rest, "--as", "alice", "--url", url]);

        Assert.That(result.Exit, Is.EqualTo(1));
        Assert.That(result.Error, Is.EqualTo($"chat {command}: cannot reach the gateway at {url}/: connection refused (is the gateway running?)"));
    }

    [TestCase("conversations list")]
    [TestCase("connect")]
    public async Task A_url_where_something_other_than_HTTP_answers_is_one_line_saying_so(string command)
    {
        // What a database port does with an HTTP request: a line of its own protocol, then the connection closes.
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var url = $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";
        var serving = Task.Run(async () =>
        {
            while (true)
            {
                using var client = await listener.AcceptTcpClientAsync();
                await client.GetStream().WriteAsync("E\0not http\0\0"u8.ToArray());
            }
        });

        var result = await CliRun.RunAsync([.. command.Split(' '), "--as", "alice", "--url", url]);

        Assert.That(result.Exit, Is.EqualTo(1));
        Assert.That(result.Error, Is.EqualTo($"chat {command}: cannot reach the gateway at {url}/: what answers there is not an HTTP server (is the port the gateway's?)"));
        listener.Stop();
        Assert.That(async () => await serving, Throws.InstanceOf<Exception>(), "the accept loop ends with the listener");
    }

    [TestCase("conversations", "list")]
    [TestCase("history", "1")]
    [TestCase("connect")]
    public async Task A_refused_token_says_so(params string[] command)
    {
        var result = await CliRun.RunAsync([.. command, "--token", "not-a-token", "--url", Gateway.HttpAddress.ToString()]);

        Assert.That(result.Exit, Is.EqualTo(1));
        Assert.That(result.Error, Does.Contain("the gateway refused the token (HTTP 401)"));
    }

    [Test]
    public async Task A_token_signed_with_another_key_is_refused()
    {
        var result = await CliRun.RunAsync("conversations", "list", "--as", "alice", "--key", new string('z', 40), "--url", Gateway.HttpAddress.ToString());

        Assert.That(result.Exit, Is.EqualTo(1));
        Assert.That(result.Error, Does.StartWith(
            "chat conversations list: the gateway refused the token (HTTP 401): The token's signature is not valid (see --key and Chat__Auth__SigningKey)"));
    }

    private static string[] Seqs(string output) => [.. output.Split('\n').Where(l => l.StartsWith('#')).Select(l => l.Split(' ')[0])];

    [GeneratedRegex(@"conversation (\d+)")]
    private static partial Regex Created();
}
