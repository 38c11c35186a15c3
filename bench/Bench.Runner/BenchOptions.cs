using System.Globalization;
using Bench.Runner.Servers;

namespace Bench.Runner;

/// <summary>The command line of <c>bench/run</c>.</summary>
internal sealed record BenchOptions
{
    public const string Help = """
        bench/run: the RealtimeChat benchmark (gateway against a bare relay and a SignalR hub)

        Usage: bench/run [options]

          --smoke                   a run of seconds: one small step and 200 idle connections per server,
                                    results in bench/results/smoke.md (proves the harness works; no numbers)
          --servers LIST            servers to run, in order (default gateway,relay,signalr)
          --scenarios LIST          chat-mix, rooms, idle (default all three)
          --rates LIST              chat-mix offered rates in msg/s (default 500,1000,2000,3000,4000,6000,8000,12000)
          --room-rates LIST         rooms offered rates in msg/s (default 50,100,200,400,800)
          --connections N           chat-mix and rooms connections (default 1000)
          --group-size N            chat-mix conversation size (default 10)
          --room-size N             rooms conversation size (default 100)
          --warmup DURATION         warm-up at each step's rate before its window (default 3s)
          --window DURATION         measured window of each step (default 10s)
          --server-warmup DURATION  load at the first rate before a server's first step (default 10s)
          --drain-timeout DURATION  how long to wait for a step's last acks and deliveries (default 15s)
          --stop-after N            stop a scenario after N failing steps in a row (default 2)
          --idle-connections N      connections held by the idle scenario (default 15000)
          --history N               messages already in the database, read, spread over the conversations, when
                                    each scenario starts (default 300000; 0 starts from empty tables)
          --soak                    also run the soak: --soak-duration at half of each server's peak rate
          --soak-duration DURATION  (default 10m)
          --soak-rate N             soak rate in msg/s instead of half the peak
          --output PATH             results file (default bench/RESULTS.md; bench/results/smoke.md with --smoke)
          --render FILE.json        draw the report and chart again from a run's measurements (written beside
                                    every report) without measuring; with --output for another file
          --note TEXT               a remark printed at the top of the results (repeatable)
          --gateway-env NAME=VALUE  an environment variable for the gateway process (repeatable), e.g.
                                    ConnectionStrings__Chat="...;Max Auto Prepare=20" to try a setting

        Durations: 500ms, 10s, 2m, 1h. Lists: comma-separated. PostgreSQL comes from ConnectionStrings__Chat
        (bench/run starts the project's cluster with database chat_bench when it is not set). Logs and the
        servers' output go to bench/results/.
        """;

    public bool Smoke { get; init; }
    public IReadOnlyList<string> Servers { get; init; } = ServerDefinition.All;
    public IReadOnlyList<string> Scenarios { get; init; } = [ScenarioNames.ChatMix, ScenarioNames.Rooms, ScenarioNames.Idle];
    public IReadOnlyList<double> Rates { get; init; } = [500, 1000, 2000, 3000, 4000, 6000, 8000, 12000];
    public IReadOnlyList<double> RoomRates { get; init; } = [50, 100, 200, 400, 800];
    public int Connections { get; init; } = 1000;
    public int GroupSize { get; init; } = 10;
    public int RoomSize { get; init; } = 100;
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(3);
    public TimeSpan Window { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan ServerWarmup { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(15);
    public int StopAfter { get; init; } = 2;
    public int IdleConnections { get; init; } = 15000;
    public int History { get; init; } = 300_000;
    public bool Soak { get; init; }
    public TimeSpan SoakDuration { get; init; } = TimeSpan.FromMinutes(10);
    public double? SoakRate { get; init; }
    public string? Output { get; init; }
    public string? Render { get; init; }
    public IReadOnlyList<string> Notes { get; init; } = [];
    public IReadOnlyDictionary<string, string> GatewayEnvironment { get; init; } = new Dictionary<string, string>();

    /// <summary>The smoke run: everything once, at small sizes, in seconds.</summary>
    public BenchOptions AsSmoke() => this with
    {
        Smoke = true,
        Rates = [200],
        RoomRates = [20],
        Connections = 100,
        Warmup = TimeSpan.FromSeconds(1),
        Window = TimeSpan.FromSeconds(3),
        ServerWarmup = TimeSpan.FromSeconds(2),
        IdleConnections = 200,
        History = 2_000,
        SoakDuration = TimeSpan.FromSeconds(10),
    };

    /// <summary>Parses the arguments; throws <see cref="ArgumentException"/> with a message for the user.</summary>
    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var options = new BenchOptions();
        var smoke = args.Contains("--smoke");
        if (smoke)
        {
            options = options.AsSmoke();
        }
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{arg} needs a value.");
            options = arg switch
            {
                "--smoke" => options,
                "--soak" => options with { Soak = true },
                "--servers" => options with { Servers = Names(Value(), ServerDefinition.All, arg) },
                "--scenarios" => options with { Scenarios = Names(Value(), ScenarioNames.All, arg) },
                "--rates" => options with { Rates = Numbers(Value(), arg) },
                "--room-rates" => options with { RoomRates = Numbers(Value(), arg) },
                "--connections" => options with { Connections = Count(Value(), arg) },
                "--group-size" => options with { GroupSize = Count(Value(), arg) },
                "--room-size" => options with { RoomSize = Count(Value(), arg) },
                "--warmup" => options with { Warmup = Duration(Value(), arg, allowZero: true) },
                "--window" => options with { Window = Duration(Value(), arg) },
                "--server-warmup" => options with { ServerWarmup = Duration(Value(), arg, allowZero: true) },
                "--drain-timeout" => options with { DrainTimeout = Duration(Value(), arg) },
                "--stop-after" => options with { StopAfter = Count(Value(), arg) },
                "--idle-connections" => options with { IdleConnections = Count(Value(), arg) },
                "--history" => options with { History = Count(Value(), arg, allowZero: true) },
                "--soak-duration" => options with { SoakDuration = Duration(Value(), arg) },
                "--soak-rate" => options with { SoakRate = Numbers(Value(), arg).Single() },
                "--output" => options with { Output = Value() },
                "--render" => options with { Render = Value() },
                "--note" => options with { Notes = [.. options.Notes, Value()] },
                "--gateway-env" => options with { GatewayEnvironment = WithVariable(options.GatewayEnvironment, Value(), arg) },
                _ => throw new ArgumentException($"Unknown option {arg}."),
            };
        }
        if (options.Connections % options.GroupSize != 0 || options.Connections % options.RoomSize != 0)
        {
            throw new ArgumentException($"--connections {options.Connections} must split into conversations of {options.GroupSize} and rooms of {options.RoomSize}.");
        }
        if (options.IdleConnections % options.GroupSize != 0)
        {
            throw new ArgumentException($"--idle-connections {options.IdleConnections} must split into conversations of {options.GroupSize}.");
        }
        return options;
    }

    private static Dictionary<string, string> WithVariable(IReadOnlyDictionary<string, string> variables, string assignment, string option)
    {
        var equals = assignment.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0)
        {
            throw new ArgumentException($"{option}: expected NAME=VALUE; got '{assignment}'.");
        }
        return new Dictionary<string, string>(variables) { [assignment[..equals]] = assignment[(equals + 1)..] };
    }

    private static string[] Names(string value, IReadOnlyList<string> allowed, string option)
    {
        var names = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0 || names.Any(n => !allowed.Contains(n)))
        {
            throw new ArgumentException($"{option}: expected a list of {string.Join(", ", allowed)}; got '{value}'.");
        }
        return names;
    }

    private static double[] Numbers(string value, string option)
    {
        var parts = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var numbers = new double[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out numbers[i]) || numbers[i] <= 0)
            {
                throw new ArgumentException($"{option}: '{parts[i]}' is not a positive number.");
            }
        }
        return numbers.Length > 0 ? numbers : throw new ArgumentException($"{option} needs at least one number.");
    }

    private static int Count(string value, string option, bool allowZero = false) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var count) && (count > 0 || (allowZero && count == 0))
            ? count
            : throw new ArgumentException($"{option}: '{value}' is not a {(allowZero ? "whole number" : "positive whole number")}.");

    internal static TimeSpan Duration(string value, string option, bool allowZero = false)
    {
        (string Suffix, double Scale)[] units = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)];
        foreach (var (suffix, scale) in units)
        {
            if (value.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(value[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var amount)
                && (amount > 0 || (allowZero && amount == 0)))
            {
                return TimeSpan.FromSeconds(amount * scale);
            }
        }
        throw new ArgumentException($"{option}: '{value}' is not a duration such as 500ms, 10s, 2m or 1h.");
    }
}

internal static class ScenarioNames
{
    public const string ChatMix = "chat-mix";
    public const string Rooms = "rooms";
    public const string Idle = "idle";

    public static readonly IReadOnlyList<string> All = [ChatMix, Rooms, Idle];
}
