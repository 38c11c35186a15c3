using System.Diagnostics;
using HdrHistogram;

namespace Bench.LoadGen.Measurement;

/// <summary>
/// Counts and latencies of the messages scheduled in one phase (a step's warm-up or its measured window),
/// whenever their acks and deliveries arrive. Receive loops record concurrently through HdrHistogram recorders;
/// <see cref="Snapshot"/> folds what they recorded into the phase's totals.
/// </summary>
public sealed class PhaseStats
{
    // Latencies are recorded in microseconds, from 1 µs to 10 minutes, with 3 significant digits.
    private const long HighestMicroseconds = 10L * 60 * 1_000_000;

    private readonly Recorder _deliveryRecorder = NewRecorder();
    private readonly Recorder _ackRecorder = NewRecorder();
    private readonly Recorder _sendLagRecorder = NewRecorder();
    private readonly HistogramBase _delivery = NewHistogram();
    private readonly HistogramBase _ack = NewHistogram();
    private readonly HistogramBase _sendLag = NewHistogram();
    private readonly Lock _fold = new();
    private HistogramBase? _deliverySpare;
    private HistogramBase? _ackSpare;
    private HistogramBase? _sendLagSpare;
    private long _sent;
    private long _unsent;
    private long _acked;
    private long _failed;
    private long _expectedDeliveries;
    private long _delivered;
    private long _outOfOrder;

    internal PhaseStats(int id, string name)
    {
        Id = id;
        Name = name;
    }

    public int Id { get; }

    public string Name { get; }

    internal void RecordSent() => Interlocked.Increment(ref _sent);

    /// <summary>The generator could not even queue the message (its own backlog was full): it counts as lost.</summary>
    internal void RecordUnsent() => Interlocked.Increment(ref _unsent);

    internal void RecordAck(long latencyTicks, int recipients)
    {
        Interlocked.Add(ref _expectedDeliveries, recipients);
        Interlocked.Increment(ref _acked);
        _ackRecorder.RecordValue(ToMicroseconds(latencyTicks));
    }

    /// <summary>How late a message went onto the socket: scheduling delay plus time queued behind the client's earlier sends.</summary>
    internal void RecordSendLag(long latencyTicks) => _sendLagRecorder.RecordValue(ToMicroseconds(latencyTicks));

    internal void RecordFailure() => Interlocked.Increment(ref _failed);

    internal void RecordDelivery(long latencyTicks, bool inOrder)
    {
        if (!inOrder)
        {
            Interlocked.Increment(ref _outOfOrder);
        }
        Interlocked.Increment(ref _delivered);
        _deliveryRecorder.RecordValue(ToMicroseconds(latencyTicks));
    }

    /// <summary>True when every sent message was answered and every delivery its ack promised has arrived.</summary>
    public bool Settled
    {
        get
        {
            var sent = Volatile.Read(ref _sent);
            return Volatile.Read(ref _acked) + Volatile.Read(ref _failed) >= sent
                   && Volatile.Read(ref _delivered) >= Volatile.Read(ref _expectedDeliveries);
        }
    }

    public PhaseSnapshot Snapshot()
    {
        lock (_fold)
        {
            // Interval histograms are recycled: each is about 160 KB.
            _deliverySpare = Fold(_deliveryRecorder, _deliverySpare, _delivery);
            _ackSpare = Fold(_ackRecorder, _ackSpare, _ack);
            _sendLagSpare = Fold(_sendLagRecorder, _sendLagSpare, _sendLag);
            return new PhaseSnapshot(
                Name,
                Volatile.Read(ref _sent),
                Volatile.Read(ref _unsent),
                Volatile.Read(ref _acked),
                Volatile.Read(ref _failed),
                Volatile.Read(ref _expectedDeliveries),
                Volatile.Read(ref _delivered),
                Volatile.Read(ref _outOfOrder),
                LatencySummary.Of(_delivery),
                LatencySummary.Of(_ack),
                LatencySummary.Of(_sendLag));
        }
    }

    private static HistogramBase Fold(Recorder recorder, HistogramBase? spare, HistogramBase total)
    {
        var interval = spare is null ? recorder.GetIntervalHistogram() : recorder.GetIntervalHistogram(spare);
        total.Add(interval);
        return interval;
    }

    private static long ToMicroseconds(long ticks) =>
        Math.Clamp(ticks * 1_000_000 / Stopwatch.Frequency, 1, HighestMicroseconds);

    private static Recorder NewRecorder() => HistogramFactory.With64BitBucketSize()
        .WithValuesFrom(1)
        .WithValuesUpTo(HighestMicroseconds)
        .WithPrecisionOf(3)
        .WithThreadSafeWrites()
        .WithThreadSafeReads()
        .Create();

    private static HistogramBase NewHistogram() => HistogramFactory.With64BitBucketSize()
        .WithValuesFrom(1)
        .WithValuesUpTo(HighestMicroseconds)
        .WithPrecisionOf(3)
        .Create();
}

/// <param name="Unsent">Messages the generator could not queue (its own backlog was full).</param>
/// <param name="ExpectedDeliveries">Acked messages times the other members of their conversation.</param>
/// <param name="Delivered">Deliveries received, in order or not.</param>
/// <param name="SendLag">How late messages went onto the socket: the generator's own delay, which is part of every latency.</param>
public sealed record PhaseSnapshot(
    string Name,
    long Sent,
    long Unsent,
    long Acked,
    long Failed,
    long ExpectedDeliveries,
    long Delivered,
    long OutOfOrder,
    LatencySummary Delivery,
    LatencySummary Ack,
    LatencySummary SendLag)
{
    /// <summary>Every scheduled message was sent and acked, and every delivery arrived.</summary>
    public bool Complete => Unsent == 0 && Failed == 0 && Acked == Sent && Delivered == ExpectedDeliveries;
}
