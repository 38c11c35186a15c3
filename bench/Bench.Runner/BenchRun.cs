using Bench.Runner.Database;
using Bench.Runner.Machine;
using Bench.Runner.Report;
using Bench.Runner.Scenarios;
using Bench.Runner.Servers;

namespace Bench.Runner;

/// <summary>The whole run: each server in turn, started, measured and stopped; then the results and the chart.</summary>
internal sealed class BenchRun(BenchOptions options, string repository, string configuration, string connectionString, string command, Output output)
{
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var started = DateTime.UtcNow;
        var machine = MachineInfo.Read();
        await using var database = BenchDatabase.Create(connectionString);
        var settings = await database.SettingsAsync(cancellationToken);
        var postmaster = await database.PostmasterPidAsync(cancellationToken);
        await database.ApplySchemaAsync(Path.Combine(repository, "schema.sql"), cancellationToken);
        output.Line($"bench: {machine.Cores} cores, {machine.Memory}, {machine.CpuModel}; PostgreSQL {database.Describe()}" +
                    (postmaster is null ? " (not on this machine: its CPU is not measured)" : $" (postmaster pid {postmaster})"));

        var results = new List<ServerResults>();
        foreach (var name in options.Servers)
        {
            var definition = ServerDefinition.For(name, repository, configuration, connectionString, options.GatewayEnvironment);
            var server = new ServerResults(name, definition.Description);
            results.Add(server);
            try
            {
                await RunServerAsync(definition, server, database, postmaster, cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                server.Failure = e.Message;
                output.Line($"[{name}] failed: {e}");
            }
        }

        var run = new RunRecord(command, started, DateTime.UtcNow, machine, database.Describe(), settings, postmaster is not null, options, results);
        var path = OutputPath(options, repository);
        var measurements = Path.ChangeExtension(path, ".json");
        RunFile.Write(measurements, run);
        Render(run, path, repository, output);
        output.Line($"bench: measurements in {Path.GetRelativePath(repository, measurements)} (bench/run --render redraws the report from them)");

        var broken = results.Where(r => r.Failure is not null).Select(r => r.Server).ToList();
        if (options.Smoke)
        {
            // The smoke proves the harness end to end: every server must have acked and delivered everything.
            broken.AddRange(results.Where(r => r.ChatMix.Concat(r.Rooms).Any(s => !s.AllDelivered) || r.Idle?.ConnectionsLost > 0).Select(r => r.Server));
        }
        if (broken.Count > 0)
        {
            output.Line($"bench: incomplete for {string.Join(", ", broken.Distinct())}");
            return 1;
        }
        return 0;
    }

    /// <summary>Where the report goes: --output, else bench/RESULTS.md (bench/results/smoke.md for a smoke run).</summary>
    public static string OutputPath(BenchOptions options, string repository) =>
        Path.GetFullPath(options.Output ?? Path.Combine(repository, options.Smoke ? "bench/results/smoke.md" : "bench/RESULTS.md"));

    /// <summary>Writes the report and, beside it, the chart.</summary>
    public static void Render(RunRecord run, string path, string repository, Output output)
    {
        var chart = Path.ChangeExtension(path, ".svg");
        var drawn = ResultsChart.Write(chart, run);
        ResultsReport.Write(path, run, drawn ? Path.GetFileName(chart) : null);
        output.Line($"bench: results in {Path.GetRelativePath(repository, path)}{(drawn ? $", chart in {Path.GetRelativePath(repository, chart)}" : "")}");
    }

    private async Task RunServerAsync(ServerDefinition definition, ServerResults results, BenchDatabase database, int? postmaster, CancellationToken cancellationToken)
    {
        var logs = Path.Combine(repository, "bench", "results");
        var probe = Path.Combine(repository, "bench", "Bench.Probe", "bin", configuration, "net10.0", "Bench.Probe.dll");
        output.Line($"[{definition.Name}] starting {Path.GetRelativePath(repository, definition.Assembly)} (log: bench/results/{definition.Name}.log)");
        await using var server = await ServerProcess.StartAsync(definition, probe, Path.Combine(logs, definition.Name + ".log"), cancellationToken);
        output.Line($"[{definition.Name}] listening on {server.Address} (pid {server.Pid})");
        var session = new ServerSession(options, server, database, postmaster, output);

        if (options.Scenarios.Contains(ScenarioNames.Idle))
        {
            results.Idle = await session.RunIdleAsync(cancellationToken);
        }
        if (options.Scenarios.Contains(ScenarioNames.ChatMix))
        {
            await session.RunSteppedAsync(ScenarioNames.ChatMix, options.GroupSize, options.Rates, results.ChatMix, cancellationToken);
        }
        if (options.Scenarios.Contains(ScenarioNames.Rooms))
        {
            await session.RunSteppedAsync(ScenarioNames.Rooms, options.RoomSize, options.RoomRates, results.Rooms, cancellationToken);
        }
        if (options.Soak)
        {
            await session.RunSoakAsync(results, cancellationToken);
        }
        var status = await server.StopAsync();
        output.Line($"[{definition.Name}] stopped (exit status {status})");
    }
}
