using System.Security.Cryptography;
using Bench.LoadGen;
using Bench.LoadGen.Targets;
using Chat.Core.Auth;
using Chat.Core.Options;

namespace Bench.Runner.Servers;

/// <summary>How to start one server under test and how the generator talks to it.</summary>
internal sealed record ServerDefinition(
    string Name,
    string Description,
    string Assembly,
    string HealthPath,
    bool UsesDatabase,
    IReadOnlyDictionary<string, string?> Environment,
    Func<Uri, IChatTarget> Target)
{
    public const string Gateway = "gateway";
    public const string Relay = "relay";
    public const string SignalR = "signalr";

    public static readonly IReadOnlyList<string> All = [Gateway, Relay, SignalR];

    /// <param name="repository">The repository root.</param>
    /// <param name="configuration">The build configuration whose output is started (Release).</param>
    /// <param name="gatewayEnvironment">Extra environment variables for the gateway, applied last.</param>
    public static ServerDefinition For(string name, string repository, string configuration, string connectionString, IReadOnlyDictionary<string, string> gatewayEnvironment) => name switch
    {
        Gateway => GatewayDefinition(repository, configuration, connectionString, gatewayEnvironment),
        Relay => new ServerDefinition(
            Relay,
            "bare Kestrel WebSocket relay: the gateway's frames, no database",
            Output(repository, configuration, "bench/Bench.Relay", "Bench.Relay.dll"),
            "/health",
            UsesDatabase: false,
            new Dictionary<string, string?> { ["ConnectionStrings__Chat"] = null },
            address => WebSocketTarget.Relay(WebSocketAddress(address, "/ws"))),
        SignalR => new ServerDefinition(
            SignalR,
            "ASP.NET Core SignalR hub, a group per conversation, one Dapper transaction per message",
            Output(repository, configuration, "bench/Bench.SignalR", "Bench.SignalR.dll"),
            "/health",
            UsesDatabase: true,
            new Dictionary<string, string?> { ["ConnectionStrings__Chat"] = connectionString },
            address => new SignalRTarget(new Uri(address, "/hub"))),
        _ => throw new ArgumentException($"Unknown server '{name}'; expected one of {string.Join(", ", All)}.", nameof(name)),
    };

    private static ServerDefinition GatewayDefinition(string repository, string configuration, string connectionString, IReadOnlyDictionary<string, string> extra)
    {
        // A key of its own for every run, as in production: the development key is refused outside Development.
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(48));
        var auth = new ChatAuthOptions { SigningKey = key };
        return new ServerDefinition(
            Gateway,
            "the chat gateway (Chat.Gateway), Production environment",
            Output(repository, configuration, "Chat.Gateway", "Chat.Gateway.dll"),
            "/health/ready",
            UsesDatabase: true,
            new Dictionary<string, string?>(extra.Select(e => KeyValuePair.Create(e.Key, (string?)e.Value)))
            {
                ["ConnectionStrings__Chat"] = extra.GetValueOrDefault("ConnectionStrings__Chat", connectionString),
                ["Chat__Auth__SigningKey"] = key,
            },
            address => WebSocketTarget.Gateway(WebSocketAddress(address, "/ws"), user => ChatTokens.Issue(auth, user.ExternalId, user.DisplayName, null, TimeSpan.FromHours(12))));
    }

    private static Uri WebSocketAddress(Uri http, string path) => new UriBuilder(http) { Scheme = http.Scheme == "https" ? "wss" : "ws", Path = path }.Uri;

    private static string Output(string repository, string configuration, string project, string assembly) =>
        Path.Combine(repository, project, "bin", configuration, "net10.0", assembly);
}
