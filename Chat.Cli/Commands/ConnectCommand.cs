using Chat.Cli.Client;
using Chat.Cli.Infrastructure;
using Chat.Cli.Terminal;

namespace Chat.Cli.Commands;

/// <summary><c>chat connect</c>: an interactive chat in the terminal over one WebSocket.</summary>
internal static class ConnectCommand
{
    private static string Help => $"""
        Usage: chat connect (--as <id> [--name <name>] [--key <key>] | --token <token>) [--url <url>]

        An interactive chat: lists your conversations, then prints messages, typing, presence, read receipts,
        edits, deletions and membership changes as they arrive. The connection skips catch-up
        (/ws?catchup=false): /open shows a conversation's recent history and /sync replays from a position.

        {ChatTerminal.Commands}

        Options:
        {HelpText.Table(GatewayTarget.OptionsHelp)}
        """;

    public static readonly Command Command = new("connect", "chat interactively in the terminal (WebSocket)", Help, GatewayTarget.Options, [], RunAsync);

    private static async Task<int> RunAsync(Arguments arguments, CliContext context)
    {
        arguments.AtMostPositionals(0);
        var target = GatewayTarget.FromArguments(arguments, context.Environment);
        using var api = new ChatApi(target);
        // The profile first: it proves the gateway is up and takes the token before any socket is opened.
        var me = (await api.GetAsync("api/users/me", context.Cancellation)).Expect(200);
        context.Output.WriteLine($"* signed in as {Display.Safe(me.Str("displayName") ?? "")} ({Display.Safe(me.Str("externalId") ?? "")}, user {me.Long("userId")}) at {target.BaseUrl}");
        await using var socket = await ChatSocket.ConnectAsync(target, catchup: false, "you", context.Cancellation);
        var output = TextWriter.Synchronized(context.Output);
        return await new ChatTerminal(api, socket, context.Input, output, me).RunAsync(context.Cancellation);
    }
}
