using Chat.Cli.Client;
using Chat.Cli.Infrastructure;
using Chat.Cli.Terminal;

namespace Chat.Cli.Commands;

/// <summary><c>chat connect</c>: an interactive chat in the terminal over one WebSocket.</summary>
internal static class ConnectCommand
{
    private static string Help => $"""
        Usage: chat connect (--as <id> [--name <name>] [--key <key>] | --token <token>) [--url <url>] [--reconnect-for <duration> | --no-reconnect]

        An interactive chat: lists your conversations, then prints messages, typing, presence, read receipts,
        edits, deletions and membership changes as they arrive. The connection skips catch-up
        (/ws?catchup=false): /open shows a conversation's recent history and /sync replays from a position.

        When the connection is lost, or the gateway restarts, it reconnects (with --as also when the token
        expires: it signs a new one), replays what the open conversation missed, and resends the messages that
        had no answer, with their keys, so that none is stored twice.

        {ChatTerminal.Commands}

        Options:
        {HelpText.Table([
            .. GatewayTarget.OptionsHelp,
            ("--reconnect-for <duration>", "how long to keep trying to reconnect (default 2m)"),
            ("--no-reconnect", "end with exit 1 when the connection ends instead")])}
        """;

    private static readonly TimeSpan DefaultReconnectFor = TimeSpan.FromMinutes(2);

    public static readonly Command Command = new("connect", "chat interactively in the terminal (WebSocket)", Help,
        [.. GatewayTarget.Options, "--reconnect-for"], ["--no-reconnect"], RunAsync);

    private static async Task<int> RunAsync(Arguments arguments, CliContext context)
    {
        arguments.AtMostPositionals(0);
        var target = GatewayTarget.FromArguments(arguments, context.Environment);
        // The whole command line is checked before the gateway is asked anything: a bad one is exit 2 whether or not
        // the gateway is up.
        if (arguments.Has("--no-reconnect") && arguments.Value("--reconnect-for") is not null)
        {
            throw new UsageException("give either --reconnect-for or --no-reconnect, not both.");
        }
        var reconnectFor = arguments.Has("--no-reconnect") ? (TimeSpan?)null : arguments.Duration("--reconnect-for") ?? DefaultReconnectFor;
        using var api = new ChatApi(target);
        // The profile first: it proves the gateway is up and takes the token before any socket is opened.
        var me = (await api.GetAsync("api/users/me", context.Cancellation)).Expect(200);
        // Signed in once the socket is open too: the handshake refuses a token that the HTTP API still takes (one
        // past its exp within Chat:Auth:ClockSkew).
        var socket = await ChatSocket.ConnectAsync(target, catchup: false, "you", context.Cancellation);
        context.Output.WriteLine($"* signed in as {Display.Safe(me.Str("displayName") ?? "")} ({Display.Safe(me.Str("externalId") ?? "")}, user {me.Long("userId")}) at {target.BaseUrl}");
        var output = TextWriter.Synchronized(context.Output);
        return await new ChatTerminal(api, target, socket, context.Input, output, me, reconnectFor).RunAsync(context.Cancellation);
    }
}
