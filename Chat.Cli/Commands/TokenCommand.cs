using System.Globalization;
using Chat.Core.Auth;
using Chat.Core.Options;

namespace Chat.Cli.Commands;

/// <summary><c>chat token</c>: mints an access token for development and for operators' checks.</summary>
public static class TokenCommand
{
    private const string Help = """
        Usage: chat token <externalId> [--name <display name>] [--picture <url>] [--ttl <duration>] [--key <signing key>]

        Prints an HS256 access token for the user <externalId> (the token's 'sub').

          --name      display name (the 'name' claim); defaults to the external id
          --picture   avatar URL (the 'picture' claim)
          --ttl       lifetime: 90s, 30m, 1h, 7d or hh:mm:ss (default 1h)
          --key       signing key; default: the environment variable Chat__Auth__SigningKey,
                      else the documented development key (accepted only by a gateway in Development)

        Issuer and audience come from Chat__Auth__Issuer and Chat__Auth__Audience when set.
        """;

    public static int Run(string[] args, TextWriter output, TextWriter error, Func<string, string?> environment)
    {
        if (args.Any(a => a is "-h" or "--help"))
        {
            output.WriteLine(Help);
            return CliApp.Ok;
        }

        string? externalId = null, name = null, picture = null, key = null;
        var ttl = TimeSpan.FromHours(1);
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                if (i + 1 >= args.Length)
                {
                    return Fail(error, $"{arg} needs a value.");
                }
                var value = args[++i];
                switch (arg)
                {
                    case "--name": name = value; break;
                    case "--picture": picture = value; break;
                    case "--key": key = value; break;
                    case "--ttl":
                        if (ParseDuration(value) is not { } parsed)
                        {
                            return Fail(error, $"--ttl '{value}' is not a duration such as 90s, 30m, 1h, 7d or 01:30:00.");
                        }
                        ttl = parsed;
                        break;
                    default: return Fail(error, $"unknown option {arg}.");
                }
            }
            else if (externalId is null)
            {
                externalId = arg;
            }
            else
            {
                return Fail(error, $"unexpected argument '{arg}'.");
            }
        }

        if (string.IsNullOrWhiteSpace(externalId))
        {
            return Fail(error, "the external user id is missing.");
        }

        var options = new ChatAuthOptions
        {
            SigningKey = key ?? environment("Chat__Auth__SigningKey") ?? ChatAuthOptions.DevelopmentSigningKey,
            Issuer = environment("Chat__Auth__Issuer"),
            Audience = environment("Chat__Auth__Audience"),
        };
        if (options.Validate(isDevelopment: true) is { } problem)
        {
            return Fail(error, problem);
        }

        output.WriteLine(ChatTokens.Issue(options, externalId, name, picture, ttl));
        return CliApp.Ok;
    }

    internal static TimeSpan? ParseDuration(string value)
    {
        if (value.Length >= 2 && long.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var amount) && amount > 0)
        {
            TimeSpan? parsed = value[^1] switch
            {
                's' => TimeSpan.FromSeconds(amount),
                'm' => TimeSpan.FromMinutes(amount),
                'h' => TimeSpan.FromHours(amount),
                'd' => TimeSpan.FromDays(amount),
                _ => null,
            };
            if (parsed is not null)
            {
                return parsed;
            }
        }
        return TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out var span) && span > TimeSpan.Zero ? span : null;
    }

    private static int Fail(TextWriter error, string message)
    {
        error.WriteLine($"chat token: {message} Run 'chat token --help' for usage.");
        return CliApp.Usage;
    }
}
