using Chat.Cli.Client;
using Chat.Cli.Infrastructure;
using Chat.Core.Auth;

namespace Chat.Cli.Commands;

/// <summary><c>chat token</c>: mints an access token for development and for operators' checks.</summary>
internal static class TokenCommand
{
    private static string Help => $"""
        Usage: chat token <externalId> [--name <display name>] [--picture <url>] [--ttl <duration>] [--key <signing key>]

        Prints an HS256 access token for the user <externalId> (the token's 'sub').

        {HelpText.Table([
            ("--name <name>", "display name (the 'name' claim); without it, the gateway keeps\nthe name it has (the external id for a new user)"),
            ("--picture <url>", "avatar URL (the 'picture' claim)"),
            ("--ttl <duration>", "lifetime: 90s, 30m, 1h, 7d or hh:mm:ss (default 1h, at most 3650d)"),
            ("--key <key>", "signing key; default: the environment variable Chat__Auth__SigningKey,\nelse the documented development key (accepted only by a gateway in Development)")])}

        Issuer and audience come from Chat__Auth__Issuer and Chat__Auth__Audience when set.
        """;

    public static readonly Command Command = new("token", "print an access token signed with the configured key", Help,
        ["--name", "--picture", "--ttl", "--key"], [], (arguments, context) => Task.FromResult(Run(arguments, context)));

    /// <summary>Ten years: far past any use, and far from the end of the calendar that an expiry must fit in.</summary>
    private static readonly TimeSpan MaxLifetime = TimeSpan.FromDays(3650);

    private static int Run(Arguments arguments, CliContext context)
    {
        arguments.AtMostPositionals(1);
        if (arguments.Positionals.Count == 0 || string.IsNullOrWhiteSpace(arguments.Positionals[0]))
        {
            throw new UsageException("the external user id is missing.");
        }
        GatewayTarget.CheckClaims(arguments.Positionals[0], arguments.Value("--name"), arguments.Value("--picture"));
        var ttl = arguments.Duration("--ttl") ?? TimeSpan.FromHours(1);
        if (ttl > MaxLifetime)
        {
            throw new UsageException($"--ttl is longer than {MaxLifetime.TotalDays:0} days; a token is a credential: mint a new one when it runs out.");
        }
        var options = GatewayTarget.SigningOptions(arguments.Value("--key"), context.Environment);
        context.Output.WriteLine(ChatTokens.Issue(options, arguments.Positionals[0], arguments.Value("--name"), arguments.Value("--picture"), ttl));
        return CliApp.Ok;
    }
}
