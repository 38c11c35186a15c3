using System.Diagnostics.Metrics;
using Chat.Core.Metrics;

namespace Chat.Tests.Metrics;

public sealed class ChatMetricsTests
{
    [Test]
    public void A_histogram_counts_a_value_on_a_bound_in_that_bound_bucket_and_keeps_buckets_cumulative()
    {
        using var metrics = new ChatMetrics();

        foreach (var size in new[] { 1, 1, 2, 3, 300, 5000 })
        {
            metrics.WriterBatchSize.Observe(size);
        }
        var text = metrics.ToPrometheusText();

        Assert.That(text, Does.Contain("chat_writer_batch_size_bucket{le=\"1\"} 2\n"));
        Assert.That(text, Does.Contain("chat_writer_batch_size_bucket{le=\"2\"} 3\n"));
        Assert.That(text, Does.Contain("chat_writer_batch_size_bucket{le=\"4\"} 4\n"));
        Assert.That(text, Does.Contain("chat_writer_batch_size_bucket{le=\"512\"} 5\n"));
        Assert.That(text, Does.Contain("chat_writer_batch_size_bucket{le=\"+Inf\"} 6\n"));
        Assert.That(text, Does.Contain("chat_writer_batch_size_sum 5307\n"));
        Assert.That(text, Does.Contain("chat_writer_batch_size_count 6\n"));
    }

    [Test]
    public void A_labeled_counter_writes_one_sample_per_label_value_in_order()
    {
        using var metrics = new ChatMetrics();

        metrics.DatabaseRetries.Add("connection");
        metrics.DatabaseRetries.Add("57P01");
        metrics.DatabaseRetries.Add("57P01");

        Assert.That(metrics.ToPrometheusText(), Does.Contain("""
            # TYPE chat_database_retries_total counter
            chat_database_retries_total{fault="57P01"} 2
            chat_database_retries_total{fault="connection"} 1

            """.ReplaceLineEndings("\n")));
    }

    [Test]
    public void Every_close_reason_refusal_status_and_error_code_is_written_from_the_start_at_zero()
    {
        using var metrics = new ChatMetrics();

        metrics.FrameErrors.Add("not_found");
        var text = metrics.ToPrometheusText();

        Assert.That(text, Does.Contain("chat_connections_closed_total{reason=\"slow_consumer\"} 0\n"));
        Assert.That(text, Does.Contain("chat_connections_closed_total{reason=\"client\"} 0\n"));
        Assert.That(text, Does.Contain("chat_handshakes_refused_total{status=\"429\"} 0\n"));
        Assert.That(text, Does.Contain("""
            # TYPE chat_frames_errors_total counter
            chat_frames_errors_total{code="access_denied"} 0
            chat_frames_errors_total{code="bad_request"} 0
            chat_frames_errors_total{code="internal"} 0
            chat_frames_errors_total{code="not_found"} 1
            chat_frames_errors_total{code="rate_limited"} 0
            chat_frames_errors_total{code="unknown_type"} 0

            """.ReplaceLineEndings("\n")));
    }

    [Test]
    public void The_meter_shows_the_same_counts_to_a_listener_with_their_labels()
    {
        using var metrics = new ChatMetrics();
        metrics.MessagesStored.Add(3);
        metrics.ConnectionsClosed.Add("slow_consumer");
        var seen = new Dictionary<string, long>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter == metrics.Meter)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            seen[instrument.Name + string.Concat(tags.ToArray().Select(t => $"{{{t.Key}={t.Value}}}"))] = value);
        listener.Start();

        listener.RecordObservableInstruments();

        Assert.That(seen["chat.messages.stored"], Is.EqualTo(3));
        Assert.That(seen["chat.connections.closed{reason=slow_consumer}"], Is.EqualTo(1));
    }

    [Test]
    public void A_metric_defined_twice_is_refused()
    {
        using var metrics = new ChatMetrics();
        metrics.AddGauge("chat.example", "An example.", () => 1);

        Assert.That(() => metrics.AddGauge("chat.example", "Again.", () => 2), Throws.InvalidOperationException);
    }
}
