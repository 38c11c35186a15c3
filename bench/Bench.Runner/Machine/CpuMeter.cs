namespace Bench.Runner.Machine;

/// <summary>CPU used, in cores, by the server, PostgreSQL, the generator and everything else, between two samples.</summary>
public sealed record CpuUse(double Server, double Postgres, double Generator, double Other)
{
    public static readonly CpuUse None = new(double.NaN, double.NaN, double.NaN, double.NaN);
}

/// <summary>Samples CPU time of the server process, the PostgreSQL cluster (when it runs on this machine) and this process.</summary>
internal sealed class CpuMeter(int serverPid, int? postmasterPid)
{
    private readonly int _self = Environment.ProcessId;

    public Sample Take() => ProcFs.Available
        ? new Sample(
            DateTime.UtcNow,
            ProcFs.ProcessCpuSeconds(serverPid),
            postmasterPid is { } pm ? ProcFs.TreeCpuSeconds(pm) : double.NaN,
            ProcFs.ProcessCpuSeconds(_self),
            ProcFs.MachineBusySeconds())
        : new Sample(DateTime.UtcNow, double.NaN, double.NaN, double.NaN, double.NaN);

    public static CpuUse Between(Sample from, Sample to)
    {
        var seconds = (to.At - from.At).TotalSeconds;
        if (seconds <= 0)
        {
            return CpuUse.None;
        }
        var server = (to.Server - from.Server) / seconds;
        var postgres = (to.Postgres - from.Postgres) / seconds;
        var generator = (to.Generator - from.Generator) / seconds;
        var machine = (to.Machine - from.Machine) / seconds;
        var other = machine - server - generator - (double.IsNaN(postgres) ? 0 : postgres);
        return new CpuUse(server, postgres, generator, Math.Max(0, other));
    }

    public readonly record struct Sample(DateTime At, double Server, double Postgres, double Generator, double Machine);
}
