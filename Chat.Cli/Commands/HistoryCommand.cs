using Chat.Cli.Client;
using Chat.Cli.Infrastructure;

namespace Chat.Cli.Commands;

/// <summary><c>chat history</c>: a page of a conversation's messages (<c>GET /api/conversations/{id}/messages</c>).</summary>
internal static class HistoryCommand
{
    private static string Help => $"""
        Usage: chat history <conversationId> [--before <seq>] [--after <seq>] [--limit <1-100>] (--as <id> [--name <name>] [--key <key>] | --token <token>) [--url <url>] [--json]

        Prints a page of the conversation's messages in seq order: the newest ones, the ones before --before
        (scrolling back), or the ones after --after (reading forward). Deleted messages show as (deleted), edited
        ones end with (edited).

        {HelpText.Table([
            ("--before <seq>", "only messages with a lower seq; the last page of them"),
            ("--after <seq>", "only messages with a higher seq; the first page of them"),
            ("--limit <n>", "messages per page, 1 to 100 (default 50)"),
            ("--json", "print the gateway's JSON answer as it is"),
            .. GatewayTarget.OptionsHelp])}
        """;

    public static readonly Command Command = new("history", "print a page of a conversation's messages (HTTP)", Help,
        [.. GatewayTarget.Options, "--before", "--after", "--limit"], ["--json"], RunAsync);

    private static async Task<int> RunAsync(Arguments arguments, CliContext context)
    {
        var conversationId = arguments.Id(0, "conversation id");
        arguments.AtMostPositionals(1);
        var before = arguments.Integer("--before", 1, long.MaxValue);
        var after = arguments.Integer("--after", 0, long.MaxValue);
        var limit = arguments.Integer("--limit", 1, 100);
        var target = GatewayTarget.FromArguments(arguments, context.Environment);
        using var api = new ChatApi(target);

        var path = ChatApi.WithQuery($"api/conversations/{conversationId}/messages", ("afterSeq", after), ("beforeSeq", before), ("limit", limit));
        var response = await api.GetAsync(path, context.Cancellation);
        // A 404 from no endpoint is a wrong --url, which Expect explains.
        if (response is { Status: 404, NoEndpoint: false })
        {
            throw new CliFailure($"conversation {conversationId} not found (HTTP 404): it does not exist or you are not a member of it.");
        }
        var page = response.Expect(200);
        if (response.PrintedAsJson(arguments, context))
        {
            return CliApp.Ok;
        }
        var items = page.Items("items").ToList();
        if (items.Count == 0)
        {
            context.Output.WriteLine("no messages.");
            return CliApp.Ok;
        }
        foreach (var message in items)
        {
            context.Output.WriteLine(Display.Message(message));
        }
        if (page.Bool("hasMore") == true)
        {
            // Reading forward, more follow the last one; otherwise older ones precede the first one.
            // A window (--after with --before) keeps its upper bound on the next page.
            context.Output.WriteLine(after is not null
                ? $"more: --after {items[^1].Long("seq")}{(before is not null ? $" --before {before}" : "")}"
                : $"older: --before {items[0].Long("seq")}");
        }
        return CliApp.Ok;
    }
}
