using System.Diagnostics;
using System.Globalization;
using Bench.LoadGen;
using Bench.LoadGen.Load;
using Bench.LoadGen.Targets;
using Bench.Runner.Database;
using Bench.Runner.Machine;
using Bench.Runner.Report;
using Bench.Runner.Servers;

namespace Bench.Runner.Scenarios;

/// <summary>The scenarios run against one started server.</summary>
internal sealed class ServerSession
{
    private const int ConnectParallelism = 64;
    private static readonly TimeSpan IdleSettle = TimeSpan.FromSeconds(5);

    /// <summary>The idle scenario warms the server up with this fraction (1/N) of its connections first.</summary>
    internal const int IdleWarmupShare = 15;
    private static readonly TimeSpan QuietTimeout = TimeSpan.FromSeconds(30);

    private readonly BenchOptions _options;
    private readonly ServerProcess _server;
    private readonly BenchDatabase _database;
    private readonly Output _output;
    private readonly IChatTarget _target;
    private readonly CpuMeter _cpu;
    private bool _warmedUp;

    public ServerSession(BenchOptions options, ServerProcess server, BenchDatabase database, int? postmasterPid, Output output)
    {
        _options = options;
        _server = server;
        _database = database;
        _output = output;
        _target = server.Definition.Target(server.Address);
        _cpu = new CpuMeter(server.Pid, postmasterPid, database.BackendPidsAsync);
    }

    private string Name => _server.Definition.Name;

    private bool UsesDatabase => _server.Definition.UsesDatabase;

    /// <summary>Offered rates one after another, each with its warm-up and window, until too many fail in a row.</summary>
    public async Task RunSteppedAsync(string scenario, int groupSize, IReadOnlyList<double> rates, List<StepResult> results, CancellationToken cancellationToken)
    {
        var label = $"[{Name} {scenario}/{groupSize}]";
        await using var load = await ConnectAsync(label, _options.Connections, groupSize, cancellationToken);

        if (!_warmedUp && _options.ServerWarmup > TimeSpan.Zero)
        {
            // Tiered compilation, pools and caches settle before anything is measured.
            var warmup = await RunStepAsync(load, scenario, groupSize, new StepPlan(rates[0], TimeSpan.Zero, _options.ServerWarmup), $"{label} server warm-up", cancellationToken);
            _output.Line($"{label} server warm-up at {rates[0]:N0} msg/s: delivery p99 {warmup.Window.Delivery.P99:F1} ms{(warmup.AllDelivered ? "" : " (" + warmup.Verdict() + ")")}");
            _warmedUp = true;
        }

        var failuresInARow = 0;
        foreach (var rate in rates)
        {
            var step = await RunStepAsync(load, scenario, groupSize, new StepPlan(rate, _options.Warmup, _options.Window), label, cancellationToken);
            results.Add(step);
            _output.Line(Summary(label, step));
            failuresInARow = step.Passes ? 0 : failuresInARow + 1;
            if (failuresInARow >= _options.StopAfter)
            {
                _output.Line($"{label} stopping after {failuresInARow} failing steps in a row");
                break;
            }
        }
    }

    /// <summary>Holds many idle connections and reports what they cost the server, after a full collection each time.</summary>
    public async Task<IdleResult> RunIdleAsync(CancellationToken cancellationToken)
    {
        var label = $"[{Name} idle]";
        var layout = await _database.SeedAsync(_options.IdleConnections, _options.GroupSize, _options.History, cancellationToken);
        // The first connections a server takes pay once for what every later one reuses: code paged in and
        // compiled, pools, tables and thread pool grown to size. A round of them, opened and closed before the
        // first reading, keeps that out of the cost per connection, the figure that sizes a deployment.
        var warmup = new BenchLayout(layout.Conversations.Take(Math.Max(1, layout.Conversations.Count / IdleWarmupShare)).ToList());
        await using (await ChatLoad.ConnectAsync(_target, warmup, ConnectParallelism,
            new CountProgress(_output, $"{label} warm-up", warmup.Users.Count), cancellationToken))
        {
        }
        await QuietAsync(cancellationToken);
        var heapBefore = await _server.Probe.CollectAsync(cancellationToken);
        var rssBefore = ProcFs.ResidentBytes(_server.Pid);
        var filesBefore = ProcFs.OpenFiles(_server.Pid);

        var connecting = Stopwatch.StartNew();
        await using var load = await ChatLoad.ConnectAsync(_target, layout, ConnectParallelism,
            new CountProgress(_output, label, layout.Users.Count), cancellationToken);
        var connectSeconds = connecting.Elapsed.TotalSeconds;
        _output.Line($"{label} {load.ConnectionCount:N0} connections open in {connectSeconds:F1} s; settling for {IdleSettle.TotalSeconds:F0} s");
        await Task.Delay(IdleSettle, cancellationToken);

        var heapAfter = await _server.Probe.CollectAsync(cancellationToken);
        var result = new IdleResult(
            Name,
            load.ConnectionCount,
            connectSeconds,
            rssBefore,
            ProcFs.ResidentBytes(_server.Pid),
            heapBefore?.GcHeapBytes,
            heapAfter?.GcHeapBytes,
            filesBefore,
            ProcFs.OpenFiles(_server.Pid),
            load.Events.ConnectionsLost);
        _output.Line((
            $"{label} RSS {result.RssBeforeBytes / 1048576.0:F1} → {result.RssAfterBytes / 1048576.0:F1} MiB ({result.RssPerConnection / 1024:F1} KB per connection), " +
            $"GC heap {result.HeapPerConnection / 1024:F1} KB per connection, open files {result.FilesBefore:N0} → {result.FilesAfter:N0}"));
        _output.Status($"{label} closing {load.ConnectionCount:N0} connections");
        return result;
    }

    /// <summary>A long run at one rate, in back-to-back intervals, to show whether memory and CPU stay flat.</summary>
    public async Task RunSoakAsync(ServerResults results, CancellationToken cancellationToken)
    {
        var rate = _options.SoakRate ?? (results.Peak(ScenarioNames.ChatMix) ?? _options.Rates[0]) / 2;
        var interval = _options.Smoke ? TimeSpan.FromSeconds(5) : TimeSpan.FromMinutes(1);
        var intervals = Math.Max(1, (int)Math.Ceiling(_options.SoakDuration / interval));
        var label = $"[{Name} soak]";
        await using var load = await ConnectAsync(label, _options.Connections, _options.GroupSize, cancellationToken);
        _output.Line($"{label} {intervals} intervals of {interval.TotalSeconds:F0} s at {rate:N0} msg/s");

        var steps = new List<(RunningStep Step, TimeSpan At, CpuUse Cpu, long Rss, ProbeStats? Probe)>();
        var started = Stopwatch.StartNew();
        for (var i = 0; i < intervals; i++)
        {
            var step = load.Start(new StepPlan(rate, TimeSpan.Zero, interval), $"soak {i + 1}", cancellationToken);
            using var stopProgress = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var progress = StepProgress.ShowAsync(step, $"{label} {i + 1}/{intervals}", _output, stopProgress.Token);
            await step.WindowStarted;
            var from = await _cpu.TakeAsync(cancellationToken);
            await step.Completion;
            var to = await _cpu.TakeAsync(cancellationToken);
            await stopProgress.CancelAsync();
            await progress;
            // A full collection each interval, so that the heap figure is what is live, not what awaits collection.
            var probe = await _server.Probe.CollectAsync(cancellationToken);
            steps.Add((step, started.Elapsed, CpuMeter.Between(from, to), ProcFs.ResidentBytes(_server.Pid), probe));
        }

        var drained = true;
        foreach (var (step, _, _, _, _) in steps)
        {
            drained &= await step.DrainAsync(_options.DrainTimeout, cancellationToken);
        }
        results.SoakDrained = drained && load.Events.ConnectionsLost == 0;
        foreach (var (step, at, cpu, rss, probe) in steps)
        {
            results.Soak.Add(new SoakSample(at, rate, step.Window.Snapshot(), step.WindowElapsed.TotalSeconds, cpu, rss,
                probe?.GcHeapBytes, probe?.ThreadPoolQueue, probe?.Gen2));
        }
        var first = results.Soak[0];
        var last = results.Soak[^1];
        _output.Line((
            $"{label} live heap {first.LiveHeapBytes / 1048576.0:F1} → {last.LiveHeapBytes / 1048576.0:F1} MiB, RSS {first.RssBytes / 1048576.0:F1} → {last.RssBytes / 1048576.0:F1} MiB, " +
            $"server CPU {first.Cpu.Server:F2} → {last.Cpu.Server:F2} cores, everything delivered: {(results.SoakDrained ? "yes" : "no")}"));
    }

    private async Task<ChatLoad> ConnectAsync(string label, int users, int groupSize, CancellationToken cancellationToken)
    {
        var layout = await _database.SeedAsync(users, groupSize, _options.History, cancellationToken);
        await QuietAsync(cancellationToken);
        var load = await ChatLoad.ConnectAsync(_target, layout, ConnectParallelism, new CountProgress(_output, label, layout.Users.Count), cancellationToken);
        _output.Line($"{label} {load.ConnectionCount:N0} connections in {layout.Conversations.Count:N0} conversations of {groupSize}");
        return load;
    }

    private async Task<StepResult> RunStepAsync(ChatLoad load, string scenario, int groupSize, StepPlan plan, string label, CancellationToken cancellationToken)
    {
        long? countBefore = UsesDatabase ? await _database.CountMessagesAsync(cancellationToken) : null;
        var probeBefore = await _server.Probe.StatsAsync(cancellationToken);
        var lostBefore = load.Events.ConnectionsLost;

        var step = load.Start(plan, $"{scenario} {plan.Rate}", cancellationToken);
        using var stopProgress = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var progress = StepProgress.ShowAsync(step, label, _output, stopProgress.Token);
        await step.WindowStarted;
        var from = await _cpu.TakeAsync(cancellationToken);
        await step.Completion;
        var to = await _cpu.TakeAsync(cancellationToken);
        var rss = ProcFs.ResidentBytes(_server.Pid);
        var drained = await step.DrainAsync(_options.DrainTimeout, cancellationToken);
        await stopProgress.CancelAsync();
        await progress;

        var probeAfter = await _server.Probe.StatsAsync(cancellationToken);
        long? countAfter = UsesDatabase ? await _database.CountMessagesAsync(cancellationToken) : null;
        var (warmup, window) = step.Snapshot();
        return new StepResult(
            Name,
            scenario,
            groupSize,
            plan.Rate,
            plan.Warmup,
            step.WindowElapsed.TotalSeconds,
            warmup,
            window,
            drained,
            countAfter - countBefore,
            UsesDatabase ? probeAfter?.DatabaseCommands - probeBefore?.DatabaseCommands : null,
            probeAfter?.AllocatedBytes - probeBefore?.AllocatedBytes,
            CpuMeter.Between(from, to),
            rss,
            load.Events.ConnectionsLost - lostBefore);
    }

    /// <summary>Waits until the server uses almost no CPU (work from the previous scenario is done), at most 30 s.</summary>
    private async Task QuietAsync(CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < QuietTimeout)
        {
            var from = await _cpu.TakeAsync(cancellationToken);
            await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            if (!(CpuMeter.Between(from, await _cpu.TakeAsync(cancellationToken)).Server >= 0.05))
            {
                return;
            }
        }
    }

    private static string Summary(string label, StepResult step) => (
        $"{label} {step.OfferedRate,6:N0} msg/s: acked {step.AckedPerSecond:N0}/s, delivered {step.DeliveredPerSecond:N0}/s, " +
        $"delivery p50 {step.Window.Delivery.P50:F2} p99 {step.Window.Delivery.P99:F2} p99.9 {step.Window.Delivery.P999:F2} ms, " +
        $"out of order {step.Window.OutOfOrder}, send lag p99 {step.Window.SendLag.P99:F2} ms, CPU server {step.Cpu.Server:F2} pg {step.Cpu.Postgres:F2} (own db {step.Cpu.PostgresOwn:F2}) gen {step.Cpu.Generator:F2} other {step.Cpu.Other:F2}" +
        (step.Passes ? "  PASS" : $"  FAIL ({step.Verdict()})"));
}
