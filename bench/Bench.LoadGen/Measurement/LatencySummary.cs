using HdrHistogram;

namespace Bench.LoadGen.Measurement;

/// <summary>Percentiles of one latency histogram, in milliseconds.</summary>
public sealed record LatencySummary(long Count, double P50, double P99, double P999, double Max)
{
    public static readonly LatencySummary Empty = new(0, double.NaN, double.NaN, double.NaN, double.NaN);

    /// <summary>Summarizes a histogram of microseconds.</summary>
    public static LatencySummary Of(HistogramBase microseconds) => microseconds.TotalCount == 0
        ? Empty
        : new LatencySummary(
            microseconds.TotalCount,
            microseconds.GetValueAtPercentile(50) / 1000.0,
            microseconds.GetValueAtPercentile(99) / 1000.0,
            microseconds.GetValueAtPercentile(99.9) / 1000.0,
            microseconds.GetMaxValue() / 1000.0);
}
