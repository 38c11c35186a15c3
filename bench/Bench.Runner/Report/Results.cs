using Bench.LoadGen.Measurement;
using Bench.Runner.Machine;

namespace Bench.Runner.Report;

/// <summary>The bar a step must clear to count toward a server's peak: delivery p99 under this, everything delivered.</summary>
internal static class Targets
{
    public const double P99LimitMs = 50;
}

/// <summary>One measured step of a stepped scenario.</summary>
/// <param name="StoredCount">Rows added to <c>messages</c> during the step (a count(*) difference); null without a database.</param>
/// <param name="DatabaseCommands">Npgsql commands the server ran during the step, from its probe.</param>
internal sealed record StepResult(
    string Server,
    string Scenario,
    int GroupSize,
    double OfferedRate,
    TimeSpan Warmup,
    double WindowSeconds,
    PhaseSnapshot WarmupPhase,
    PhaseSnapshot Window,
    bool Drained,
    long? StoredCount,
    long? DatabaseCommands,
    long? AllocatedBytes,
    CpuUse Cpu,
    long ServerRssBytes,
    long ConnectionsLost)
{
    public long AckedInStep => WarmupPhase.Acked + Window.Acked;

    /// <summary>
    /// The count(*) difference equals the acks of the step: every ack names a stored row, nothing else was stored.
    /// Only a drained step can be checked: otherwise acks are still arriving while the rows are counted.
    /// </summary>
    public bool CountMatches => StoredCount is null || !Drained || StoredCount == AckedInStep;

    public bool AllDelivered => Drained && WarmupPhase.Complete && Window.Complete && CountMatches && ConnectionsLost == 0;

    public bool Passes => AllDelivered && Window.Delivery.P99 < Targets.P99LimitMs;

    public double AckedPerSecond => Window.Acked / WindowSeconds;

    public double DeliveredPerSecond => Window.Delivered / WindowSeconds;

    public double? StoredPerSecond => StoredCount / (Warmup.TotalSeconds + WindowSeconds);

    /// <summary>CPU milliseconds the benchmark database's backends spent per acked message in the window.</summary>
    public double? PostgresMsPerMessage => double.IsNaN(Cpu.PostgresOwn) || Window.Acked == 0 ? null : Cpu.PostgresOwn * 1000 / AckedPerSecond;

    // Only a drained step: otherwise commands were run for messages whose acks had not arrived yet.
    public double? CommandsPerMessage => DatabaseCommands is { } commands && Drained && AckedInStep > 0 ? (double)commands / AckedInStep : null;

    public double? AllocatedPerMessage => AllocatedBytes is { } bytes && Drained && AckedInStep > 0 ? (double)bytes / AckedInStep : null;

    /// <summary>The count check as shown: ✓, ✗, or "unchecked" for a step that did not drain; empty without a database.</summary>
    public string CountCheck => StoredCount is null ? "" : !Drained ? " (unchecked)" : CountMatches ? " ✓" : " ✗";

    /// <summary>Why the step does not pass, in a few words; empty when it passes.</summary>
    public string Verdict()
    {
        var reasons = new List<string>();
        if (!Drained)
        {
            reasons.Add("not drained");
        }
        if (Window.Unsent + WarmupPhase.Unsent > 0)
        {
            reasons.Add($"{Window.Unsent + WarmupPhase.Unsent} unsent");
        }
        if (Window.Failed + WarmupPhase.Failed > 0)
        {
            reasons.Add($"{Window.Failed + WarmupPhase.Failed} refused");
        }
        var unanswered = Window.Sent - Window.Acked - Window.Failed;
        if (unanswered > 0)
        {
            reasons.Add($"{unanswered} unacked");
        }
        if (Window.Delivered < Window.ExpectedDeliveries)
        {
            reasons.Add($"{Window.ExpectedDeliveries - Window.Delivered} undelivered");
        }
        if (!CountMatches)
        {
            reasons.Add($"count(*) {StoredCount} ≠ acked {AckedInStep}");
        }
        if (ConnectionsLost > 0)
        {
            reasons.Add($"{ConnectionsLost} connections lost");
        }
        if (!(Window.Delivery.P99 < Targets.P99LimitMs))
        {
            reasons.Add($"p99 ≥ {Targets.P99LimitMs} ms");
        }
        return string.Join(", ", reasons);
    }
}

/// <summary>The idle scenario: N connections held, and what they cost the server.</summary>
internal sealed record IdleResult(
    string Server,
    int Connections,
    double ConnectSeconds,
    long RssBeforeBytes,
    long RssAfterBytes,
    long? HeapBeforeBytes,
    long? HeapAfterBytes,
    int FilesBefore,
    int FilesAfter,
    long ConnectionsLost)
{
    public double RssPerConnection => (RssAfterBytes - RssBeforeBytes) / (double)Connections;

    public double? HeapPerConnection => HeapAfterBytes - HeapBeforeBytes is { } delta ? delta / (double)Connections : null;
}

/// <summary>One interval of the soak.</summary>
internal sealed record SoakSample(
    TimeSpan At,
    double Rate,
    PhaseSnapshot Interval,
    double IntervalSeconds,
    CpuUse Cpu,
    long RssBytes,
    long? LiveHeapBytes,
    long? ThreadPoolQueue,
    int? Gen2Collections);

internal sealed class ServerResults(string server, string description)
{
    public string Server { get; } = server;
    public string Description { get; } = description;
    public List<StepResult> ChatMix { get; init; } = [];
    public List<StepResult> Rooms { get; init; } = [];
    public IdleResult? Idle { get; set; }
    public List<SoakSample> Soak { get; init; } = [];
    public bool SoakDrained { get; set; }
    public string? Failure { get; set; }

    public IEnumerable<StepResult> Steps(string scenario) => scenario == ScenarioNames.Rooms ? Rooms : ChatMix;

    /// <summary>The highest offered rate whose step passed; null when none did.</summary>
    public double? Peak(string scenario) => Steps(scenario).Where(s => s.Passes).Select(s => (double?)s.OfferedRate).Max();

    public StepResult? At(string scenario, double rate) => Steps(scenario).FirstOrDefault(s => s.OfferedRate == rate);
}
