using System.Diagnostics;
using System.Runtime.InteropServices;
using Bench.LoadGen.Measurement;
using Bench.LoadGen.Targets;

namespace Bench.LoadGen.Load;

/// <summary>
/// Sends on a fixed schedule, whatever the server does: message k is due at start + k / rate, goes to the next
/// sender in a fixed shuffled order, and carries its due time. It runs on a thread of its own and sleeps between
/// arrivals (in microseconds where the platform allows), so it costs little CPU and adds little jitter.
/// </summary>
internal static class OpenLoopScheduler
{
    public readonly record struct Sender(IBenchClient Client, long ConversationId);

    /// <summary>Runs the schedule from <paramref name="start"/> to <paramref name="end"/> (Stopwatch ticks).</summary>
    /// <param name="windowStart">Messages due from here on belong to <paramref name="window"/>, before it to <paramref name="warmup"/>.</param>
    /// <param name="windowStarted">Called once, when the first message of the window is due.</param>
    public static void Run(
        IReadOnlyList<Sender> senders,
        double rate,
        long start,
        long windowStart,
        long end,
        PhaseStats warmup,
        PhaseStats window,
        Action windowStarted,
        CancellationToken cancellationToken)
    {
        var interval = Stopwatch.Frequency / rate;
        var inWindow = false;
        for (long k = 0; ; k++)
        {
            var due = start + (long)(k * interval);
            if (due >= end || cancellationToken.IsCancellationRequested)
            {
                break;
            }
            WaitUntil(due, cancellationToken);
            if (!inWindow && due >= windowStart)
            {
                inWindow = true;
                windowStarted();
            }
            var phase = inWindow ? window : warmup;
            var sender = senders[(int)(k % senders.Count)];
            if (sender.Client.TrySend(new OutgoingMessage(sender.ConversationId, new Stamp(phase.Id, due))))
            {
                phase.RecordSent();
            }
            else
            {
                phase.RecordUnsent();
            }
        }
        if (!inWindow)
        {
            windowStarted();
        }
    }

    private static void WaitUntil(long due, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var remaining = due - Stopwatch.GetTimestamp();
            if (remaining <= 0)
            {
                return;
            }
            var microseconds = remaining * 1_000_000 / Stopwatch.Frequency;
            // Wake a little early and check again: no sleep is exact, and being late is what we measure.
            Sleep(Math.Clamp(microseconds, 50, 20_000));
        }
    }

    private static void Sleep(long microseconds)
    {
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
        {
            _ = usleep((uint)microseconds);
        }
        else
        {
            Thread.Sleep(TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond, microseconds * 10)));
        }
    }

    // Thread.Sleep rounds to whole milliseconds; at thousands of arrivals a second that would bunch them up.
    // DllImport rather than LibraryImport: a blittable signature needs no generated marshalling, nor unsafe code.
#pragma warning disable SYSLIB1054
    [DllImport("libc", EntryPoint = "usleep")]
    private static extern int usleep(uint microseconds);
#pragma warning restore SYSLIB1054
}
