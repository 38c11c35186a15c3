using System.Text.RegularExpressions;

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

    [TestCase("token")]
    [TestCase("conversations create")]
    public async Task Help_before_a_command_is_that_commands_help(string command)
    {
        var result = await CliRun.RunAsync(["help", .. command.Split(' ')]);

        Assert.That(result.Exit, Is.EqualTo(0), result.ToString());
        Assert.That(result.Output, Does.StartWith($"Usage: chat {command} "));
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

    [TestCase("--help")]
    [TestCase("conversations --help")]
    [TestCase("token --help")]
    [TestCase("smoke --help")]
    [TestCase("connect --help")]
    [TestCase("conversations create --help")]
    [TestCase("conversations list --help")]
    [TestCase("history --help")]
    public async Task Every_list_in_a_help_text_starts_its_descriptions_in_one_column(string commandLine)
    {
        var help = (await CliRun.RunAsync(commandLine.Split(' '))).Output;

        var lists = IndentedBlocks(help).ToList();
        Assert.That(lists, Is.Not.Empty, help);
        foreach (var list in lists)
        {
            var columns = list.Select(DescriptionColumn).ToList();
            Assert.That(columns, Is.All.EqualTo(columns[0]).And.All.GreaterThan(0), string.Join(Environment.NewLine, list));
        }
    }

    // The runs of lines indented by two spaces or more: the lists of commands, options and checks.
    private static IEnumerable<List<string>> IndentedBlocks(string text)
    {
        var block = new List<string>();
        foreach (var line in text.Split('\n').Select(l => l.TrimEnd('\r')))
        {
            if (line.StartsWith("  ", StringComparison.Ordinal))
            {
                block.Add(line);
            }
            else if (block.Count > 0)
            {
                yield return block;
                block = [];
            }
        }
        if (block.Count > 0)
        {
            yield return block;
        }
    }

    // Where a row's description starts: after its term and a gap of two spaces or more; on a description's further
    // line, after the indent. -1 for a line that is neither.
    private static int DescriptionColumn(string line) =>
        Regex.Match(line, @"^(  \S.*?\s{2,}|\s{3,})(?=\S)") is { Success: true } match ? match.Length : -1;

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
    // Checked before the gateway is asked anything: nothing listens on port 9.
    [TestCase(new[] { "connect", "--as", "a", "--url", "http://127.0.0.1:9", "--reconnect-for", "soon" }, "--reconnect-for 'soon' is not a duration")]
    [TestCase(new[] { "connect", "--as", "a", "--url", "http://127.0.0.1:9", "--reconnect-for", "5s", "--no-reconnect" }, "give either --reconnect-for or --no-reconnect, not both")]
    public async Task A_bad_command_line_is_explained_and_exits_2(string[] args, string explanation)
    {
        var result = await CliRun.RunAsync(args);

        Assert.That(result.Exit, Is.EqualTo(2), result.ToString());
        Assert.That(result.Output, Is.Empty);
        Assert.That(result.Error, Does.Contain(explanation));
    }
}
