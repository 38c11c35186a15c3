using Chat.Cli.Commands;

namespace Chat.Cli;

/// <summary>The <c>chat</c> command: a list of subcommands, each with its own <c>--help</c>.</summary>
public static class CliApp
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;

    private const string Help = """
        chat: the RealtimeChat command-line client

        Usage: chat <command> [options]

        Commands:
          token <externalId>   print an access token signed with the configured key

        Run 'chat <command> --help' for a command's options.
        """;

    public static Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, Func<string, string?> environment)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            output.WriteLine(Help);
            return Task.FromResult(args.Length == 0 ? Usage : Ok);
        }
        return args[0] switch
        {
            "token" => Task.FromResult(TokenCommand.Run(args[1..], output, error, environment)),
            var other => Task.FromResult(UnknownCommand(other, error)),
        };
    }

    private static int UnknownCommand(string command, TextWriter error)
    {
        error.WriteLine($"chat: unknown command '{command}'. Run 'chat --help' for the list.");
        return Usage;
    }
}
