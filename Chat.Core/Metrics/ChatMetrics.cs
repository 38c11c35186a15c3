using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text;
using Chat.Core.Connections;
using Chat.Core.Protocol;
using Chat.Data;

namespace Chat.Core.Metrics;

/// <summary>
/// What an operator watches: sockets, handshakes refused, frames by type and errors by code, messages stored,
/// deliveries, the message writer's batches and queue, and the process's memory and CPU. One instance per gateway
/// (a DI singleton); <c>/metrics</c> shows it as Prometheus text, and the <c>RealtimeChat</c> meter shows the same
/// values to <c>dotnet-counters</c> and OpenTelemetry.
/// </summary>
/// <remarks>
/// Kept here rather than through a metrics library's own instruments: the gateway counts on its hottest paths
/// (every frame, every fan-out), where a field increment is all it can afford, and the exposition of a few dozen
/// series is short. The components that own a gauge's value (the registry, the writer) add it when they are built.
/// </remarks>
public sealed class ChatMetrics : IDisposable, IDatabaseRetryObserver
{
    public const string MeterName = "RealtimeChat";

    // Batch sizes up to the writer's largest batch; durations from a fast commit to a stalled database.
    private static readonly double[] BatchSizeBounds = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
    private static readonly double[] BatchSecondsBounds = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Meter _meter = new(MeterName);
    private readonly List<MetricFamily> _families = [];
    private readonly Lock _lock = new();

    public ChatMetrics()
    {
        ConnectionsOpened = Add(new CounterFamily("chat.connections.opened", "Sockets accepted after a successful handshake."));
        ConnectionsClosed = Add(new LabeledCounterFamily("chat.connections.closed", "Sockets ended, by reason: the gateway's close reason, \"client\" when the client closed, \"lost\" when the socket failed.", "reason", CloseReason.MetricLabels));
        HandshakesRefused = Add(new LabeledCounterFamily("chat.handshakes.refused", "Upgrade requests answered without a socket, by HTTP status.", "status", ["400", "401", "403", "426", "429", "503"]));
        FramesReceived = Add(new LabeledCounterFamily("chat.frames.received", "Client frames read, by type (\"invalid\" when it had no type the gateway knows).", "type"));
        FrameErrors = Add(new LabeledCounterFamily("chat.frames.errors", "error frames queued to clients, by code (not those to a connection already closing, which are never sent).", "code", ErrorCodes.All));
        MessagesStored = Add(new CounterFamily("chat.messages.stored", "Messages committed and acknowledged."));
        MessagesDuplicate = Add(new CounterFamily("chat.messages.duplicates", "Messages whose key the sender had already used: answered with the original's ack, not stored again."));
        Deliveries = Add(new CounterFamily("chat.deliveries", "Frames queued to connections by fan-out (messages, typing, read receipts, presence, edits and deletes, member frames); one held during a connection's catch-up counts when it is queued after it, and none counts that a closing connection drops or that the catch-up already sent."));
        WriterBatchSize = Add(new HistogramFamily("chat.writer.batch.size", "Messages per batch stored by the message writer (one round trip, one commit).", BatchSizeBounds));
        WriterBatchSeconds = Add(new HistogramFamily("chat.writer.batch.duration", "Time from sending a batch to the database to its committed results.", BatchSecondsBounds, Stopwatch.Frequency, "seconds"));
        WriterBatchFailures = Add(new CounterFamily("chat.writer.batch.failures", "Batches that failed after the database retries: their senders got error internal."));
        ApiRequestsLimited = Add(new CounterFamily("chat.api.requests.limited", "HTTP API requests answered 429 by the per-user rate limit."));
        DatabaseRetries = Add(new LabeledCounterFamily("chat.database.retries", "Database calls run again after a transient fault, by SQLSTATE (\"connection\" when the connection broke).", "fault"));

        // The process, so that one scrape shows the gateway's footprint beside its traffic.
        AddGauge("process.resident_memory", "Resident set size.", () => Environment.WorkingSet, "bytes");
        Add(new ObservedCounterFamily("process.cpu", "Processor time used since start.", () => Environment.CpuUsage.TotalTime.TotalSeconds, "seconds"));
        AddGauge("dotnet.gc.heap", "Managed heap size after the last collection.", () => GC.GetGCMemoryInfo().HeapSizeBytes, "bytes");
        AddGauge("dotnet.threadpool.queue", "Work items waiting for a thread-pool thread.", () => ThreadPool.PendingWorkItemCount);
    }

    /// <summary>This gateway's meter (a process can hold more than one gateway, each with its own).</summary>
    internal Meter Meter => _meter;

    public CounterFamily ConnectionsOpened { get; }
    public LabeledCounterFamily ConnectionsClosed { get; }
    public LabeledCounterFamily HandshakesRefused { get; }
    public LabeledCounterFamily FramesReceived { get; }
    public LabeledCounterFamily FrameErrors { get; }
    public CounterFamily MessagesStored { get; }
    public CounterFamily MessagesDuplicate { get; }
    public CounterFamily Deliveries { get; }
    public HistogramFamily WriterBatchSize { get; }
    public HistogramFamily WriterBatchSeconds { get; }
    public CounterFamily WriterBatchFailures { get; }
    public CounterFamily ApiRequestsLimited { get; }
    public LabeledCounterFamily DatabaseRetries { get; }

    void IDatabaseRetryObserver.Retrying(string fault) => DatabaseRetries.Add(fault);

    /// <summary>Adds a value that its owner reads on demand (open sockets, queue depth).</summary>
    public GaugeFamily AddGauge(string name, string help, Func<double> read, string? unit = null) => Add(new GaugeFamily(name, help, read, unit));

    /// <summary>Every metric in the Prometheus text format, version 0.0.4.</summary>
    public string ToPrometheusText()
    {
        MetricFamily[] families;
        lock (_lock)
        {
            families = [.. _families];
        }
        var text = new StringBuilder(4096);
        foreach (var family in families)
        {
            family.WritePrometheus(text);
        }
        return text.ToString();
    }

    public void Dispose() => _meter.Dispose();

    private T Add<T>(T family) where T : MetricFamily
    {
        lock (_lock)
        {
            if (_families.Any(f => f.Name == family.Name))
            {
                throw new InvalidOperationException($"The metric {family.Name} is defined twice.");
            }
            _families.Add(family);
        }
        family.Register(_meter);
        return family;
    }
}
