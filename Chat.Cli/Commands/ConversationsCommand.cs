using System.Text.Json;
using Chat.Cli.Client;
using Chat.Cli.Infrastructure;

namespace Chat.Cli.Commands;

/// <summary><c>chat conversations create|list</c>: thin wrappers over <c>POST</c> and <c>GET /api/conversations</c>.</summary>
internal static class ConversationsCommand
{
    private static string CreateHelp => $"""
        Usage: chat conversations create [--title <title>] [--group] <externalId>... (--as <id> [--name <name>] [--key <key>] | --token <token>) [--url <url>] [--json]

        Creates a conversation between you and the users <externalId>... (POST /api/conversations). Users who have
        never connected get a profile named after their external id. A direct conversation between the same two
        people is created once: asking again shows the existing one.

        {HelpText.Table([
            ("--title <title>", "the conversation's title (at most 200 characters)"),
            ("--group", "a group even with one other member (default: a group when there are two or more others)"),
            ("--json", "print the gateway's JSON answer as it is"),
            .. GatewayTarget.OptionsHelp])}
        """;

    private static string ListHelp => $"""
        Usage: chat conversations list [--cursor <cursor>] [--limit <1-100>] (--as <id> [--name <name>] [--key <key>] | --token <token>) [--url <url>] [--json]

        Lists your conversations, newest activity first (GET /api/conversations), with their members, your unread
        count and the last message.

        {HelpText.Table([
            ("--cursor <cursor>", "the next page: the cursor printed at the end of the previous one"),
            ("--limit <n>", "conversations per page, 1 to 100 (default 50)"),
            ("--json", "print the gateway's JSON answer as it is"),
            .. GatewayTarget.OptionsHelp])}
        """;

    public static readonly Command Create = new("conversations create", "create a conversation (HTTP)", CreateHelp,
        [.. GatewayTarget.Options, "--title"], ["--group", "--json"], CreateAsync);

    public static readonly Command List = new("conversations list", "list your conversations (HTTP)", ListHelp,
        [.. GatewayTarget.Options, "--cursor", "--limit"], ["--json"], ListAsync);

    private static async Task<int> CreateAsync(Arguments arguments, CliContext context)
    {
        if (arguments.Positionals.Count == 0)
        {
            throw new UsageException("name at least one member: chat conversations create <externalId>...");
        }
        var target = GatewayTarget.FromArguments(arguments, context.Environment);
        using var api = new ChatApi(target);
        var body = new Dictionary<string, object> { ["memberExternalIds"] = arguments.Positionals };
        if (arguments.Value("--title") is { } requested)
        {
            body["title"] = requested;
        }
        if (arguments.Has("--group"))
        {
            body["isGroup"] = true;
        }
        var response = await api.PostAsync("api/conversations", body, context.Cancellation);
        var conversation = response.Expect(201, 200);
        if (response.PrintedAsJson(arguments, context))
        {
            return CliApp.Ok;
        }
        var verb = response.Status == 201 ? "created conversation" : "already exists: conversation";
        var title = conversation.Str("title") is { } named ? $" \"{Display.Safe(named)}\"" : "";
        var members = conversation.Items("members").ToList();
        context.Output.WriteLine($"{verb} {conversation.Long("conversationId")}{title} ({Display.Kind(conversation)}, {members.Count} members: {Display.Members(conversation)})");
        return CliApp.Ok;
    }

    private static async Task<int> ListAsync(Arguments arguments, CliContext context)
    {
        arguments.AtMostPositionals(0);
        var limit = arguments.Integer("--limit", 1, 100);
        var target = GatewayTarget.FromArguments(arguments, context.Environment);
        using var api = new ChatApi(target);
        var path = ChatApi.WithQuery("api/conversations", ("cursor", arguments.Value("--cursor")), ("limit", limit));
        var response = await api.GetAsync(path, context.Cancellation);
        var page = response.Expect(200);
        if (response.PrintedAsJson(arguments, context))
        {
            return CliApp.Ok;
        }
        var items = page.Items("items").ToList();
        if (items.Count == 0)
        {
            context.Output.WriteLine("no conversations.");
        }
        else
        {
            var rows = new List<string[]> { new[] { "ID", "TITLE", "KIND", "MEMBERS", "UNREAD", "LAST MESSAGE" } };
            rows.AddRange(items.Select(Row));
            Display.Table(context.Output, rows);
        }
        if (page.Str("nextCursor") is { } next)
        {
            context.Output.WriteLine($"more: --cursor {next}");
        }
        return CliApp.Ok;
    }

    private static string[] Row(JsonElement c) =>
    [
        Display.Number(c.Long("conversationId")),
        c.Str("title") is { } title ? Display.Safe(title) : "-",
        Display.Kind(c),
        Display.Members(c),
        Display.Number(c.Long("unreadCount")),
        c.Long("lastSeq") is > 0 ? $"#{c.Long("lastSeq")} {c.Time("lastMessageAt")} {Display.LastMessage(c)}".TrimEnd() : "-",
    ];
}
