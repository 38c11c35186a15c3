using Chat.Cli.Commands;
using Chat.Cli.Infrastructure;

namespace Chat.Cli;

/// <summary>The <c>chat</c> command: a list of subcommands, each with its own <c>--help</c>.</summary>
public static class CliApp
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;

    private static readonly Command[] Commands =
    [
        TokenCommand.Command,
        SmokeCommand.Command,
        ConnectCommand.Command,
        ConversationsCommand.Create,
        ConversationsCommand.List,
        MembersCommand.Add,
        MembersCommand.Remove,
        HistoryCommand.Command,
    ];

    private static string Help => $"""
        chat: the RealtimeChat command-line client

        Usage: chat <command> [options]

        Commands:
        {HelpText.Table(Commands.Select(c => (c.Name, c.Summary)))}

        Run 'chat <command> --help' for a command's options.
        """;

    public static Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, Func<string, string?> environment) =>
        RunAsync(args, TextReader.Null, output, error, environment, CancellationToken.None);

    /// <summary>Runs one command line; <paramref name="input"/> feeds interactive commands (<c>connect</c>).</summary>
    public static async Task<int> RunAsync(string[] args, TextReader input, TextWriter output, TextWriter error, Func<string, string?> environment, CancellationToken cancellation)
    {
        if (args is ["help", _, ..])
        {
            // 'chat help token' is 'chat token --help'.
            args = [.. args[1..], "--help"];
        }
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            output.WriteLine(Help);
            return args.Length == 0 ? Usage : Ok;
        }

        var command = Commands.FirstOrDefault(c => c.Words.Length <= args.Length && c.Words.SequenceEqual(args[..c.Words.Length], StringComparer.Ordinal));
        if (command is null)
        {
            return Group(args, output, error);
        }
        var rest = args[command.Words.Length..];
        if (Arguments.AsksForHelp(rest))
        {
            output.WriteLine(command.Help);
            return Ok;
        }

        var context = new CliContext(input, output, error, environment, cancellation);
        try
        {
            return await command.RunAsync(Arguments.Parse(rest, command.Options, command.Flags), context);
        }
        catch (Exception e) when (e is UsageException or ValueRefused)
        {
            error.WriteLine($"chat {command.Name}: {e.Message} Run 'chat {command.Name} --help' for usage.");
            return Usage;
        }
        catch (CliFailure e)
        {
            error.WriteLine($"chat {command.Name}: {e.Message}");
            return Failed;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            error.WriteLine($"chat {command.Name}: interrupted.");
            return Failed;
        }
    }

    /// <summary>A first word that names a group of commands (<c>conversations</c>) lists them; anything else is unknown.</summary>
    private static int Group(string[] args, TextWriter output, TextWriter error)
    {
        var members = Commands.Where(c => c.Words.Length > 1 && c.Words[0] == args[0]).ToArray();
        if (members.Length == 0)
        {
            error.WriteLine($"chat: unknown command '{args[0]}'. Run 'chat --help' for the list.");
            return Usage;
        }
        var list = HelpText.Table(members.Select(c => ("chat " + c.Name, c.Summary)));
        if (args.Length > 1 && args[1] is "-h" or "--help")
        {
            output.WriteLine($"Commands:{Environment.NewLine}{list}{Environment.NewLine}{Environment.NewLine}Run 'chat {args[0]} <command> --help' for a command's options.");
            return Ok;
        }
        error.WriteLine(args.Length > 1
            ? $"chat {args[0]}: unknown command '{args[1]}'. One of:{Environment.NewLine}{list}"
            : $"chat {args[0]}: which one?{Environment.NewLine}{list}");
        return Usage;
    }
}
