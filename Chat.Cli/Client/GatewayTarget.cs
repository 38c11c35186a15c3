using Chat.Cli.Infrastructure;
using Chat.Core.Auth;
using Chat.Core.Protocol;
using Chat.Core.Options;

namespace Chat.Cli.Client;

/// <summary>Where the gateway is and who the command acts as: <c>--url</c>, and <c>--as</c> or <c>--token</c>.</summary>
internal sealed record GatewayTarget(Uri BaseUrl, string Token)
{
    /// <summary>Signs a fresh token for the same user, when the command signs its own (<c>--as</c>); null for <c>--token</c>.</summary>
    public Func<string>? Renew { get; init; }

    public const string DefaultUrl = "http://127.0.0.1:8080";

    /// <summary>The options every command that talks to the gateway takes.</summary>
    public static readonly string[] Options = ["--url", "--as", "--token", "--key", "--name"];

    /// <summary>Their help rows, for a command's option list (<see cref="HelpText.Table"/>).</summary>
    public static readonly (string Term, string Description)[] OptionsHelp =
    [
        ("--url <url>", "the gateway (default: the environment variable CHAT_URL, else http://127.0.0.1:8080)"),
        ("--as <id>", "act as this external user id, with a token signed by --key"),
        ("--token <token>", "act with this access token instead of --as"),
        ("--key <key>", "signing key for --as; default: Chat__Auth__SigningKey, else the development key"),
        ("--name <name>", "display name for --as (the token's 'name' claim)"),
    ];

    private static readonly TimeSpan TokenLifetime = TimeSpan.FromHours(1);

    /// <summary>The path of the WebSocket endpoint below the base URL.</summary>
    public Uri WebSocketUrl(bool catchup)
    {
        var builder = new UriBuilder(new Uri(BaseUrl, "ws"))
        {
            Scheme = BaseUrl.Scheme == Uri.UriSchemeHttps ? "wss" : "ws",
            Query = catchup ? "" : "catchup=false",
        };
        return builder.Uri;
    }

    /// <summary>The URL of an API path such as <c>api/conversations</c>, below the base URL (which may itself have a path).</summary>
    public Uri Api(string relative) => new(BaseUrl, relative);

    public static GatewayTarget FromArguments(Arguments arguments, Func<string, string?> environment)
    {
        var url = BaseUrlFrom(arguments, environment);
        var externalId = arguments.Value("--as");
        var token = arguments.Value("--token");
        if (externalId is not null && token is not null)
        {
            throw new UsageException("give either --as or --token, not both.");
        }
        if (token is not null)
        {
            if (arguments.Value("--key") is not null || arguments.Value("--name") is not null)
            {
                throw new UsageException("--key and --name go with --as, not with --token.");
            }
            return new GatewayTarget(url, token);
        }
        if (string.IsNullOrWhiteSpace(externalId))
        {
            throw new UsageException("say who you are: --as <externalId> (or --token <token>).");
        }
        CheckClaims(externalId, arguments.Value("--name"), null);
        var signing = SigningOptions(arguments.Value("--key"), environment);
        var name = arguments.Value("--name");
        string Issue() => ChatTokens.Issue(signing, externalId, name, null, TokenLifetime);
        return new GatewayTarget(url, Issue()) { Renew = Issue };
    }

    /// <summary>Refuses, as a usage error, claims that the gateway would refuse with a 401.</summary>
    public static void CheckClaims(string externalId, string? name, string? picture)
    {
        static void Check(string option, string? value, int limit)
        {
            if (value is not null && value.Length > limit)
            {
                throw new UsageException($"{option} is {value.Length} characters long; the gateway refuses a token whose value is longer than {limit}.");
            }
        }
        Check("the external user id", externalId, ChatTokens.MaxExternalIdLength);
        Check("--name", name, ChatTokens.MaxNameLength);
        Check("--picture", picture, ChatTokens.MaxPictureLength);
        // Then the rest of the gateway's rule for a 'sub', so that no token is signed that it would refuse.
        if (ExternalIds.Problem(externalId) is { } problem)
        {
            throw new UsageException($"the external user id {problem}; the gateway refuses a token whose 'sub' breaks that rule.");
        }
        if (!string.IsNullOrWhiteSpace(name) && LabelText.Problem(name) is { } nameProblem)
        {
            throw new UsageException($"--name {nameProblem}; the gateway refuses a token whose 'name' breaks that rule.");
        }
        if (!string.IsNullOrWhiteSpace(picture) && LinkUrls.Problem(picture) is { } pictureProblem)
        {
            throw new UsageException($"--picture {pictureProblem}; the gateway refuses a token whose 'picture' breaks that rule.");
        }
    }

    /// <summary><c>--url</c>, else <c>CHAT_URL</c>, else the default; an absolute http(s) URL, kept with a trailing slash.</summary>
    public static Uri BaseUrlFrom(Arguments arguments, Func<string, string?> environment)
    {
        // The message names where the bad URL came from: the user may not know CHAT_URL is set.
        var (text, source) = arguments.Value("--url") is { } given ? (given, "--url")
            : environment("CHAT_URL") is { } configured ? (configured, "CHAT_URL")
            : (DefaultUrl, "the default URL");
        if (!Uri.TryCreate(text, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            throw new UsageException($"{source} '{text}' is not an absolute http:// or https:// URL.");
        }
        // A trailing slash makes relative paths resolve below a gateway mounted under a path prefix.
        return url.AbsolutePath.EndsWith('/') ? url : new UriBuilder(url) { Path = url.AbsolutePath + "/" }.Uri;
    }

    /// <summary>
    /// The key that signs tokens: <c>--key</c>, else <c>Chat__Auth__SigningKey</c>, else the development key;
    /// issuer and audience from the environment, as the gateway reads them.
    /// </summary>
    public static ChatAuthOptions SigningOptions(string? key, Func<string, string?> environment)
    {
        // The gateway's messages name its setting; here the key came from --key or the environment variable.
        var (signingKey, source) = key is not null ? (key, "--key")
            : environment("Chat__Auth__SigningKey") is { } configured ? (configured, "Chat__Auth__SigningKey")
            : (ChatAuthOptions.DevelopmentSigningKey, "the development key");
        var options = new ChatAuthOptions
        {
            SigningKey = signingKey,
            Issuer = environment("Chat__Auth__Issuer"),
            Audience = environment("Chat__Auth__Audience"),
        };
        return options.Validate(isDevelopment: true) is { } problem
            ? throw new UsageException(problem.Replace("Chat:Auth:SigningKey", source, StringComparison.Ordinal).Replace("give the gateway", "give", StringComparison.Ordinal))
            : options;
    }
}
