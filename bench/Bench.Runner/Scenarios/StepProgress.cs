using System.Diagnostics;
using Bench.LoadGen.Load;

namespace Bench.Runner.Scenarios;

/// <summary>Shows a running step once a second: where it is, the rate, and the delivery p99 so far.</summary>
internal static class StepProgress
{
    public static async Task ShowAsync(RunningStep step, string label, Output output, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var elapsed = Stopwatch.GetElapsedTime(started);
                var inWindow = step.WindowStarted.IsCompleted;
                var phase = (inWindow ? step.Window : step.Warmup).Snapshot();
                var where = step.Completion.IsCompleted
                    ? "draining"
                    : inWindow
                        ? $"window {elapsed - step.Plan.Warmup:mm\\:ss}/{step.Plan.Window:mm\\:ss}"
                        : $"warm-up {elapsed:mm\\:ss}/{step.Plan.Warmup:mm\\:ss}";
                output.Status($"{label} {step.Plan.Rate:N0} msg/s  {where}  sent {phase.Sent:N0}  acked {phase.Acked:N0}  " +
                              $"delivered {phase.Delivered:N0}/{phase.ExpectedDeliveries:N0}  p99 so far {phase.Delivery.P99:F1} ms");
            }
        }
        catch (OperationCanceledException)
        {
            // The step is over.
        }
    }
}
