using System.Diagnostics;
using Bench.LoadGen.Measurement;

namespace Bench.LoadGen.Load;

/// <summary>A step in progress: its schedule runs on a thread of its own; acks and deliveries land in its phases.</summary>
public sealed class RunningStep
{
    private static readonly TimeSpan DrainPoll = TimeSpan.FromMilliseconds(50);

    private readonly TaskCompletionSource<long> _windowStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _windowEndedAt;

    private RunningStep(StepPlan plan, PhaseStats warmup, PhaseStats window)
    {
        Plan = plan;
        Warmup = warmup;
        Window = window;
    }

    public StepPlan Plan { get; }

    public PhaseStats Warmup { get; }

    public PhaseStats Window { get; }

    /// <summary>Completes when the first message of the measured window is due.</summary>
    public Task WindowStarted => _windowStarted.Task;

    /// <summary>Completes when the schedule has ended (the window is over); the answers may still be on their way.</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    /// <summary>Length of the measured window as it ran, once <see cref="Completion"/> is done.</summary>
    public TimeSpan WindowElapsed => _windowStarted.Task.IsCompletedSuccessfully && _windowEndedAt != 0
        ? Stopwatch.GetElapsedTime(_windowStarted.Task.Result, _windowEndedAt)
        : TimeSpan.Zero;

    internal static RunningStep Start(StepPlan plan, IReadOnlyList<OpenLoopScheduler.Sender> senders, PhaseStats warmup, PhaseStats window, CancellationToken cancellationToken)
    {
        var step = new RunningStep(plan, warmup, window);
        var start = Stopwatch.GetTimestamp();
        var windowStart = start + (long)(plan.Warmup.TotalSeconds * Stopwatch.Frequency);
        var end = windowStart + (long)(plan.Window.TotalSeconds * Stopwatch.Frequency);
        // A thread of its own, so that a busy thread pool never delays an arrival: the schedule is synchronous.
        step.Completion = Task.Factory.StartNew(
            () =>
            {
                try
                {
                    OpenLoopScheduler.Run(senders, plan.Rate, start, windowStart, end, warmup, window,
                        () => step._windowStarted.TrySetResult(Stopwatch.GetTimestamp()), cancellationToken);
                }
                finally
                {
                    step._windowEndedAt = Stopwatch.GetTimestamp();
                    step._windowStarted.TrySetResult(step._windowEndedAt);
                }
            },
            // Not the caller's token: the delegate must run to complete WindowStarted; the schedule itself stops on it.
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);
        return step;
    }

    /// <summary>
    /// After the schedule ended, waits until every message of the step was answered and every delivery arrived,
    /// or until <paramref name="timeout"/>. True when everything arrived.
    /// </summary>
    public async Task<bool> DrainAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        await Completion;
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (!(Warmup.Settled && Window.Settled))
        {
            if (Stopwatch.GetTimestamp() >= deadline)
            {
                return false;
            }
            await Task.Delay(DrainPoll, cancellationToken);
        }
        return true;
    }

    /// <summary>The window's figures so far, and the warm-up's.</summary>
    public (PhaseSnapshot Warmup, PhaseSnapshot Window) Snapshot() => (Warmup.Snapshot(), Window.Snapshot());
}
