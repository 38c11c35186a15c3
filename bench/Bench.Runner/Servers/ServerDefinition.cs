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
            GatewayEnvironment(extra, connectionString, key),
            address => WebSocketTarget.Gateway(WebSocketAddress(address, "/ws"), user => ChatTokens.Issue(auth, user.ExternalId, user.DisplayName, null, TimeSpan.FromHours(12))));
    }

    private static Dictionary<string, string?> GatewayEnvironment(IReadOnlyDictionary<string, string> extra, string connectionString, string key)
    {
        // The generator's users send faster and the idle scenario holds more sockets than the gateway's defaults
        // allow (10 frames a second per connection, 10,000 sockets): raised, as an operator would for this load.
        // --gateway-env overrides them.
        var environment = new Dictionary<string, string?>
        {
            ["Chat__Limits__MaxConnections"] = "50000",
            ["Chat__Limits__MessageRatePerSecond"] = "1000",
            ["Chat__Limits__MessageBurst"] = "1000",
        };
        foreach (var (name, value) in extra)
        {
            environment[name] = value;
        }
        environment["ConnectionStrings__Chat"] = extra.GetValueOrDefault("ConnectionStrings__Chat", connectionString);
        environment["Chat__Auth__SigningKey"] = key;
        return environment;
    }

    private static Uri WebSocketAddress(Uri http, string path) => new UriBuilder(http) { Scheme = http.Scheme == "https" ? "wss" : "ws", Path = path }.Uri;

    private static string Output(string repository, string configuration, string project, string assembly) =>
        Path.Combine(repository, project, "bin", configuration, "net10.0", assembly);
}
