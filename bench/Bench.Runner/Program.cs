using System.Globalization;
using Bench.Runner;

// Reports and logs are read by people and tools alike: one number format everywhere.
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

try
{
    // Before parsing: --help must work whatever else is on the line.
    if (args.Contains("--help") || args.Contains("-h"))
    {
        Console.WriteLine(BenchOptions.Help);
        return 0;
    }
    var options = BenchOptions.Parse(args);
    var repository = Repository.Root();
    if (options.Render is { } measurements)
    {
        var run = Bench.Runner.Report.RunFile.Read(measurements);
        using var renderOutput = new Output(Console.Out, StreamWriter.Null);
        BenchRun.Render(run, options.Output is null ? Path.ChangeExtension(Path.GetFullPath(measurements), ".md") : Path.GetFullPath(options.Output), repository, renderOutput);
        return 0;
    }
    if (Environment.GetEnvironmentVariable("ConnectionStrings__Chat") is not { Length: > 0 } connectionString)
    {
        Console.Error.WriteLine("bench: ConnectionStrings__Chat is not set; bench/run sets it (and starts PostgreSQL) when you do not.");
        return 2;
    }
    var configuration = Repository.Configuration();
    var command = Environment.GetEnvironmentVariable("BENCH_COMMAND") is { Length: > 0 } given ? given : "bench/run " + string.Join(' ', args);
    Directory.CreateDirectory(Path.Combine(repository, "bench", "results"));
    using var output = new Output(Console.Out, new StreamWriter(Path.Combine(repository, "bench", "results", "bench.log"), append: false));
    using var stop = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        stop.Cancel();
    };
    return await new BenchRun(options, repository, configuration, connectionString, command, output).RunAsync(stop.Token);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"bench: {e.Message} Run 'bench/run --help' for the options.");
    return 2;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("bench: interrupted");
    return 130;
}

internal static class Repository
{
    public static string Root()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "RealtimeChat.sln")))
        {
            directory = directory.Parent;
        }
        return directory?.FullName ?? throw new InvalidOperationException("RealtimeChat.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The configuration this runner was built in (bin/Release/...), so it starts servers of the same build.</summary>
    public static string Configuration() =>
        AppContext.BaseDirectory.Split(Path.DirectorySeparatorChar).Contains("Debug") ? "Debug" : "Release";
}
