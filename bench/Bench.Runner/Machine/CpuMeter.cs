namespace Bench.Runner.Machine;

/// <summary>CPU used, in cores, by the server, PostgreSQL, the generator and everything else, between two samples.</summary>
/// <param name="Postgres">The whole PostgreSQL cluster: every backend, whatever its database, and the background processes.</param>
/// <param name="PostgresOwn">The backends connected to the benchmark's database only: what the server under test costs PostgreSQL
/// when the cluster is shared.</param>
public sealed record CpuUse(double Server, double Postgres, double PostgresOwn, double Generator, double Other)
{
    public static readonly CpuUse None = new(double.NaN, double.NaN, double.NaN, double.NaN, double.NaN);
}

/// <summary>Samples CPU time of the server process, the PostgreSQL cluster (when it runs on this machine) and this process.</summary>
/// <param name="ownBackends">The pids of the backends connected to the benchmark's database, now.</param>
internal sealed class CpuMeter(int serverPid, int? postmasterPid, Func<CancellationToken, Task<IReadOnlyList<int>>> ownBackends)
{
    private readonly int _self = Environment.ProcessId;

    public async Task<Sample> TakeAsync(CancellationToken cancellationToken)
    {
        if (!ProcFs.Available)
        {
            return new Sample(DateTime.UtcNow, double.NaN, double.NaN, new Dictionary<int, double>(), double.NaN, double.NaN);
        }
        var backends = new Dictionary<int, double>();
        if (postmasterPid is not null)
        {
            foreach (var pid in await ownBackends(cancellationToken))
            {
                backends[pid] = ProcFs.ProcessCpuSeconds(pid);
            }
        }
        return new Sample(
            DateTime.UtcNow,
            ProcFs.ProcessCpuSeconds(serverPid),
            postmasterPid is { } pm ? ProcFs.TreeCpuSeconds(pm) : double.NaN,
            backends,
            ProcFs.ProcessCpuSeconds(_self),
            ProcFs.MachineBusySeconds());
    }

    public static CpuUse Between(Sample from, Sample to)
    {
        var seconds = (to.At - from.At).TotalSeconds;
        if (seconds <= 0)
        {
            return CpuUse.None;
        }
        var server = (to.Server - from.Server) / seconds;
        var postgres = (to.Postgres - from.Postgres) / seconds;
        // Backends that lived through the whole interval; pooled connections do, so this misses little.
        var own = double.IsNaN(postgres)
            ? double.NaN
            : to.Backends.Where(b => from.Backends.ContainsKey(b.Key)).Sum(b => b.Value - from.Backends[b.Key]) / seconds;
        var generator = (to.Generator - from.Generator) / seconds;
        var machine = (to.Machine - from.Machine) / seconds;
        var other = machine - server - generator - (double.IsNaN(postgres) ? 0 : postgres);
        return new CpuUse(server, postgres, own, generator, Math.Max(0, other));
    }

    public readonly record struct Sample(DateTime At, double Server, double Postgres, IReadOnlyDictionary<int, double> Backends, double Generator, double Machine);
}
