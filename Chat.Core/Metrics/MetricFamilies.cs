using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace Chat.Core.Metrics;

/// <summary>
/// One named metric of the gateway, kept by the gateway itself and shown two ways: as Prometheus text at
/// <c>/metrics</c>, and as an instrument of the <see cref="ChatMetrics.MeterName"/> meter for <c>dotnet-counters</c>
/// and OpenTelemetry. The hot path only increments a field; the meter's instruments read it when listened to.
/// </summary>
public abstract class MetricFamily(string name, string help)
{
    /// <summary>The instrument's name (OpenTelemetry style, dotted).</summary>
    public string Name { get; } = name;

    public string Help { get; } = help;

    /// <summary>The Prometheus name: dots become underscores, with the suffix its type calls for.</summary>
    public abstract string PrometheusName { get; }

    internal abstract void Register(Meter meter);

    internal abstract void WritePrometheus(StringBuilder text);

    protected void WriteHeader(StringBuilder text, string type) =>
        text.Append("# HELP ").Append(PrometheusName).Append(' ').Append(Help).Append('\n')
            .Append("# TYPE ").Append(PrometheusName).Append(' ').Append(type).Append('\n');

    protected static string Format(double value) => double.IsPositiveInfinity(value) ? "+Inf" : value.ToString("R", CultureInfo.InvariantCulture);

    protected static string BaseName(string name) => name.Replace('.', '_');
}

/// <summary>A count that only grows.</summary>
public sealed class CounterFamily(string name, string help) : MetricFamily(name, help)
{
    private long _value;

    public override string PrometheusName => BaseName(Name) + "_total";

    public long Value => Interlocked.Read(ref _value);

    public void Add(long amount = 1) => Interlocked.Add(ref _value, amount);

    internal override void Register(Meter meter) => meter.CreateObservableCounter(Name, () => Value, description: Help);

    internal override void WritePrometheus(StringBuilder text)
    {
        WriteHeader(text, "counter");
        text.Append(PrometheusName).Append(' ').Append(Value).Append('\n');
    }
}

/// <summary>A total that only grows and that something else keeps (the process's CPU time): read when it is shown.</summary>
public sealed class ObservedCounterFamily(string name, string help, Func<double> read, string unit) : MetricFamily(name, help)
{
    public override string PrometheusName => BaseName(Name) + "_" + unit + "_total";

    internal override void Register(Meter meter) => meter.CreateObservableCounter(Name, read, unit: unit, description: Help);

    internal override void WritePrometheus(StringBuilder text)
    {
        WriteHeader(text, "counter");
        text.Append(PrometheusName).Append(' ').Append(Format(read())).Append('\n');
    }
}

/// <summary>A count that only grows, kept apart by one label whose values come from a small, fixed vocabulary (close reasons, error codes, frame types).</summary>
/// <param name="knownValues">
/// Label values written from the start, at 0: a series that appears only with its first event reads as "no data" to
/// an alert such as <c>increase(...{reason="slow_consumer"}[5m]) &gt; 0</c>, rather than as 0.
/// </param>
public sealed class LabeledCounterFamily(string name, string help, string label, IEnumerable<string>? knownValues = null) : MetricFamily(name, help)
{
    private readonly ConcurrentDictionary<string, StrongBox<long>> _values = new(
        (knownValues ?? []).Select(value => KeyValuePair.Create(value, new StrongBox<long>())), StringComparer.Ordinal);

    public string Label { get; } = label;

    public override string PrometheusName => BaseName(Name) + "_total";

    public long this[string value] => _values.TryGetValue(value, out var box) ? Interlocked.Read(ref box.Value) : 0;

    /// <summary>The sum over every label value.</summary>
    public long Total => _values.Values.Sum(box => Interlocked.Read(ref box.Value));

    public void Add(string value, long amount = 1) => Interlocked.Add(ref _values.GetOrAdd(value, static _ => new StrongBox<long>()).Value, amount);

    internal override void Register(Meter meter) => meter.CreateObservableCounter(
        Name,
        () => _values.Select(pair => new Measurement<long>(Interlocked.Read(ref pair.Value.Value), new KeyValuePair<string, object?>(Label, pair.Key))),
        description: Help);

    internal override void WritePrometheus(StringBuilder text)
    {
        WriteHeader(text, "counter");
        foreach (var (value, box) in _values.OrderBy(pair => pair.Key, StringComparer.Ordinal))
        {
            text.Append(PrometheusName).Append('{').Append(Label).Append("=\"").Append(Escape(value)).Append("\"} ")
                .Append(Interlocked.Read(ref box.Value)).Append('\n');
        }
    }

    private static string Escape(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
}

/// <summary>A value read when it is shown (open sockets, queue depth, memory).</summary>
public sealed class GaugeFamily(string name, string help, Func<double> read, string? unit = null) : MetricFamily(name, help)
{
    public override string PrometheusName => BaseName(Name) + (unit is null ? "" : "_" + unit);

    public double Value => read();

    internal override void Register(Meter meter) => meter.CreateObservableGauge(Name, read, unit: unit, description: Help);

    internal override void WritePrometheus(StringBuilder text)
    {
        WriteHeader(text, "gauge");
        text.Append(PrometheusName).Append(' ').Append(Format(read())).Append('\n');
    }
}

/// <summary>
/// A distribution over fixed bucket bounds. Observations are counted per bucket with one interlocked increment;
/// the sum is kept in whole units of <paramref name="scale"/> (ticks for durations) so that it stays an integer.
/// </summary>
public sealed class HistogramFamily(string name, string help, double[] bounds, double scale = 1, string? unit = null) : MetricFamily(name, help)
{
    private readonly long[] _buckets = new long[bounds.Length + 1];
    private long _count;
    private long _sum;
    private Histogram<double>? _instrument;

    public override string PrometheusName => BaseName(Name) + (unit is null ? "" : "_" + unit);

    public long Count => Interlocked.Read(ref _count);

    /// <summary>Records one observation of <paramref name="raw"/> units (a batch size, or a duration in ticks).</summary>
    public void Observe(long raw)
    {
        var value = raw / scale;
        var bucket = Array.BinarySearch(bounds, value);
        Interlocked.Increment(ref _buckets[bucket >= 0 ? bucket : ~bucket]);
        Interlocked.Increment(ref _count);
        Interlocked.Add(ref _sum, raw);
        _instrument?.Record(value);
    }

    internal override void Register(Meter meter) => _instrument = meter.CreateHistogram<double>(Name, unit, Help);

    internal override void WritePrometheus(StringBuilder text)
    {
        WriteHeader(text, "histogram");
        long cumulative = 0;
        for (var i = 0; i <= bounds.Length; i++)
        {
            cumulative += Interlocked.Read(ref _buckets[i]);
            text.Append(PrometheusName).Append("_bucket{le=\"").Append(Format(i < bounds.Length ? bounds[i] : double.PositiveInfinity)).Append("\"} ")
                .Append(cumulative).Append('\n');
        }
        text.Append(PrometheusName).Append("_sum ").Append(Format(Interlocked.Read(ref _sum) / scale)).Append('\n');
        text.Append(PrometheusName).Append("_count ").Append(cumulative).Append('\n');
    }
}
