namespace Chat.Tests.Cli;

/// <summary>Help and bad command lines, which never reach a gateway.</summary>
public sealed class CliUsageTests
{
    [TestCase("token", "--ttl")]
    [TestCase("smoke", "--timeout")]
    [TestCase("connect", "/open <conversationId>")]
    [TestCase("conversations create", "--title")]
    [TestCase("conversations list", "--cursor")]
    [TestCase("history", "--before")]
    public async Task Every_command_has_help(string command, string option)
    {
        var result = await CliRun.RunAsync([.. command.Split(' '), "--help"]);

        Assert.That(result.Exit, Is.EqualTo(0));
        Assert.That(result.Output, Does.StartWith($"Usage: chat {command}").And.Contain(option));
    }

    [TestCase("history", "5 --before --help")]
    [TestCase("token", "alice --name --help")]
    [TestCase("conversations list", "--as a --limit -h")]
    public async Task Help_is_printed_even_where_an_option_expects_its_value(string command, string arguments)
    {
        var result = await CliRun.RunAsync([.. command.Split(' '), .. arguments.Split(' ')]);

        Assert.That(result.Exit, Is.EqualTo(0), result.ToString());
        Assert.That(result.Output, Does.StartWith($"Usage: chat {command} "));
    }

    [Test]
    public async Task Chat_help_lists_every_command()
    {
        var result = await CliRun.RunAsync("--help");

        Assert.That(result.Exit, Is.EqualTo(0));
        foreach (var command in new[] { "token", "smoke", "connect", "conversations create", "conversations list", "history" })
        {
            Assert.That(result.Output, Does.Contain($"  {command} "));
        }
        Assert.That((await CliRun.RunAsync()).Exit, Is.EqualTo(2), "no command at all is a usage error");
        Assert.That((await CliRun.RunAsync("conversations", "--help")).Output, Does.Contain("chat conversations create").And.Contain("chat conversations list"));
    }

    [TestCase(new[] { "frobnicate" }, "chat: unknown command 'frobnicate'")]
    [TestCase(new[] { "conversations" }, "chat conversations: which one?")]
    [TestCase(new[] { "conversations", "delete" }, "chat conversations: unknown command 'delete'")]
    [TestCase(new[] { "conversations", "list" }, "chat conversations list: say who you are: --as <externalId>")]
    [TestCase(new[] { "conversations", "list", "--as", "a", "--token", "t" }, "give either --as or --token, not both")]
    [TestCase(new[] { "conversations", "list", "--as", "a", "--limit", "0" }, "--limit '0' is not an integer from 1 to 100")]
    [TestCase(new[] { "conversations", "list", "--as", "a", "--colour", "red" }, "unknown option --colour")]
    [TestCase(new[] { "conversations", "list", "--as" }, "--as needs a value")]
    [TestCase(new[] { "token", "alice", "--name", "--ttl", "1h" }, "--name needs a value: '--ttl' looks like an option (write --name=--ttl if it is the value)")]
    [TestCase(new[] { "history", "5", "--before", "--as", "a" }, "--before needs a value: '--as' looks like an option")]
    [TestCase(new[] { "conversations", "create", "--as", "a" }, "name at least one member")]
    [TestCase(new[] { "history", "--as", "a" }, "the conversation id is missing")]
    [TestCase(new[] { "history", "x1", "--as", "a" }, "the conversation id 'x1' is not a positive integer")]
    [TestCase(new[] { "history", "1", "--as", "a", "--url", "ftp://example.com" }, "--url 'ftp://example.com' is not an absolute http:// or https:// URL")]
    [TestCase(new[] { "history", "1", "--as", "a", "--key", "short" }, "too short")]
    [TestCase(new[] { "smoke", "--timeout", "soon" }, "--timeout 'soon' is not a duration")]
    [TestCase(new[] { "smoke", "extra" }, "unexpected argument 'extra'")]
    [TestCase(new[] { "connect", "--token", "t", "--name", "N" }, "--key and --name go with --as")]
    public async Task A_bad_command_line_is_explained_and_exits_2(string[] args, string explanation)
    {
        var result = await CliRun.RunAsync(args);

        Assert.That(result.Exit, Is.EqualTo(2), result.ToString());
        Assert.That(result.Output, Is.Empty);
        Assert.That(result.Error, Does.Contain(explanation));
    }
}
