using Chat.Cli.Client;
using Chat.Cli.Infrastructure;
using Chat.Cli.Smoke;

namespace Chat.Cli.Commands;

/// <summary><c>chat smoke</c>: checks a running gateway end to end, over HTTP and WebSockets, with users made for the run.</summary>
internal static class SmokeCommand
{
    private static string Help => $"""
        Usage: chat smoke [--url <url>] [--key <signing key>] [--timeout <duration>]

        Checks a running gateway end to end with four users made for this run (external ids smoke-<run>-alice, -bob,
        -carol and -dave, so runs never interfere): it creates a conversation over HTTP, connects the users over
        WebSocket and checks, in order:

          create a conversation over HTTP    POST /api/conversations answers 201 with both members
          connect over WebSocket             welcome, then ready listing the conversation
          message → ack → delivery           the sender's ack and the other member's live copy agree
          idempotent retry                   the same clientMessageId gets the same ack and no second delivery
          typing                             isTyping true and false reach the other member
          read receipt and unread count      the read frame, with the reader's unreadCount on their own other device
                                             only, and unreadCount in GET /api/conversations
          presence online/away/offline       away, also in the ready of another device of the user; offline on
                                             close, online on reconnect
          catch-up after a reconnect         a message sent while away comes in catch-up; ready's counts
          sync from a position               two pages of one message, then synced with hasMore false
          edit and delete                    messageEdited and messageDeleted live, and in the history
          member added live                  a connected user added over HTTP gets the member frame and the next message
          non-member refused                 HTTP 404 and WebSocket access_denied for an outsider

        One line per check: 'ok   <check>  <milliseconds>' or 'FAIL <check>: <why>'; a check that needs a failed one
        is skipped. Exits 0 only when every check passes, else 1. The run leaves its users and conversation behind.

        {HelpText.Table([
            ("--url <url>", "the gateway (default: the environment variable CHAT_URL, else http://127.0.0.1:8080)"),
            ("--key <key>", "the key that signs the users' tokens; default: Chat__Auth__SigningKey, else the\ndevelopment key (accepted only by a gateway in Development)"),
            ("--timeout <time>", "how long one check may take: 90s, 1m, hh:mm:ss (default 5s, at most 1h)")])}
        """;

    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    public static readonly Command Command = new("smoke", "check a running gateway end to end", Help, ["--url", "--key", "--timeout"], [], RunAsync);

    private static readonly TimeSpan MaxTimeout = TimeSpan.FromHours(1);

    private static async Task<int> RunAsync(Arguments arguments, CliContext context)
    {
        arguments.AtMostPositionals(0);
        var url = GatewayTarget.BaseUrlFrom(arguments, context.Environment);
        var signing = GatewayTarget.SigningOptions(arguments.Value("--key"), context.Environment);
        var timeout = arguments.Duration("--timeout") ?? DefaultTimeout;
        if (timeout > MaxTimeout)
        {
            throw new UsageException("--timeout is longer than an hour; a check that takes that long has failed.");
        }

        await using var run = new SmokeRun(url, signing);
        var passed = await SmokeRunner.RunAsync(run.Checks, () => run.Step, timeout, url.ToString(), context.Output, context.Cancellation);
        return passed ? CliApp.Ok : CliApp.Failed;
    }
}
