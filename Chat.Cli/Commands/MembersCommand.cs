using Chat.Cli.Client;
using Chat.Cli.Infrastructure;

namespace Chat.Cli.Commands;

/// <summary>
/// <c>chat members add|remove</c>: thin wrappers over <c>POST /api/conversations/{id}/members</c> and
/// <c>DELETE /api/conversations/{id}/members/{externalId}</c>, so that a membership change can be tried from the
/// terminal and watched in <c>chat connect</c>.
/// </summary>
internal static class MembersCommand
{
    private static string AddHelp => $"""
        Usage: chat members add <conversationId> <externalId> (--as <id> [--name <name>] [--key <key>] | --token <token>) [--url <url>] [--json]

        Adds a user to a group conversation you are a member of (POST /api/conversations/<id>/members). A user who
        has never connected gets a profile named after their external id. Their open connections receive the
        conversation at once, and every member's connections are told.

        {HelpText.Table([
            ("--json", "print the gateway's JSON answer as it is"),
            .. GatewayTarget.OptionsHelp])}
        """;

    private static string RemoveHelp => $"""
        Usage: chat members remove <conversationId> <externalId> (--as <id> [--name <name>] [--key <key>] | --token <token>) [--url <url>]

        Removes a member (DELETE /api/conversations/<id>/members/<externalId>): yourself, from any conversation
        (leaving it), or another member of a group. Their connections stop receiving the conversation at once.

        {HelpText.Table(GatewayTarget.OptionsHelp)}
        """;

    public static readonly Command Add = new("members add", "add a member to a group (HTTP)", AddHelp,
        [.. GatewayTarget.Options], ["--json"], AddAsync);

    public static readonly Command Remove = new("members remove", "remove a member, or leave a conversation (HTTP)", RemoveHelp,
        [.. GatewayTarget.Options], [], RemoveAsync);

    private static async Task<int> AddAsync(Arguments arguments, CliContext context)
    {
        var (conversationId, externalId) = Target(arguments);
        var target = GatewayTarget.FromArguments(arguments, context.Environment);
        using var api = new ChatApi(target);
        var response = await api.PostAsync($"api/conversations/{conversationId}/members", new { externalId }, context.Cancellation);
        if (response is { Status: 409 })
        {
            throw new CliFailure($"conversation {conversationId} takes no more members (HTTP 409): {response.Body.Str("detail") ?? "it is a direct conversation, or full"}");
        }
        var member = response.Expect(201, 200);
        if (response.PrintedAsJson(arguments, context))
        {
            return CliApp.Ok;
        }
        var who = $"{Display.Safe(member.Str("displayName") ?? externalId)} ({Display.Safe(member.Str("externalId") ?? externalId)})";
        context.Output.WriteLine(response.Status == 201
            ? $"added {who} to conversation {conversationId}."
            : $"{who} is already a member of conversation {conversationId}.");
        return CliApp.Ok;
    }

    private static async Task<int> RemoveAsync(Arguments arguments, CliContext context)
    {
        var (conversationId, externalId) = Target(arguments);
        var target = GatewayTarget.FromArguments(arguments, context.Environment);
        using var api = new ChatApi(target);
        var response = await api.SendAsync(HttpMethod.Delete, $"api/conversations/{conversationId}/members/{Uri.EscapeDataString(externalId)}", null, context.Cancellation);
        if (response is { Status: 404, NoEndpoint: false })
        {
            throw new CliFailure($"{Display.Safe(externalId)} is not a member of conversation {conversationId} (HTTP 404), or you are not a member of it.");
        }
        if (response is { Status: 403 })
        {
            throw new CliFailure($"only {Display.Safe(externalId)} can leave direct conversation {conversationId} (HTTP 403): the other person of a direct conversation cannot be removed.");
        }
        response.Expect(204);
        context.Output.WriteLine($"removed {Display.Safe(externalId)} from conversation {conversationId}.");
        return CliApp.Ok;
    }

    private static (long ConversationId, string ExternalId) Target(Arguments arguments)
    {
        var conversationId = arguments.Id(0, "conversation id");
        if (arguments.Positionals.Count < 2)
        {
            throw new UsageException("name the member: <conversationId> <externalId>");
        }
        arguments.AtMostPositionals(2);
        return (conversationId, arguments.Positionals[1]);
    }
}
