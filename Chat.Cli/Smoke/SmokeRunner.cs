using System.Diagnostics;
using System.Globalization;
using Chat.Cli.Infrastructure;

namespace Chat.Cli.Smoke;

/// <summary>Runs checks in order, each within its own timeout, and prints one line per check and a summary.</summary>
internal static class SmokeRunner
{
    private const int NameWidth = 32;

    /// <summary>Returns true when every check passed.</summary>
    /// <param name="step">What the running check is waiting for, to name it when the check times out.</param>
    public static async Task<bool> RunAsync(IReadOnlyList<SmokeCheck> checks, Func<string> step, TimeSpan timeout, string target, TextWriter output, CancellationToken cancellation)
    {
        var notPassed = new HashSet<string>(StringComparer.Ordinal);
        int passed = 0, failed = 0, skipped = 0;
        var total = Stopwatch.StartNew();
        // Skips are printed when a check runs after them; those that end the run are said in one line, so that a
        // gateway that is down shows its one failure and not a screenful of "skip" lines under it.
        var pendingSkips = new List<string>();
        foreach (var check in checks)
        {
            if (check.Requires.FirstOrDefault(notPassed.Contains) is { } missing)
            {
                pendingSkips.Add($"skip {check.Name}: needs '{missing}'");
                notPassed.Add(check.Name);
                skipped++;
                continue;
            }
            pendingSkips.ForEach(output.WriteLine);
            pendingSkips.Clear();

            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            deadline.CancelAfter(timeout);
            var clock = Stopwatch.StartNew();
            string? problem;
            try
            {
                await check.RunAsync(deadline.Token);
                problem = null;
            }
            catch (Exception e) when (e is SmokeFailure or CliFailure)
            {
                problem = e.Message;
            }
            catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
            {
                problem = $"timed out after {Seconds(timeout)} waiting for {step()}";
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Anything else is still this check's failure, not a reason to abandon the run.
                problem = $"{e.GetType().Name}: {e.Message}";
            }
            var elapsed = clock.Elapsed.TotalMilliseconds.ToString("0.0", CultureInfo.InvariantCulture);
            if (problem is null)
            {
                output.WriteLine($"ok   {check.Name.PadRight(NameWidth)} {elapsed} ms");
                passed++;
            }
            else
            {
                output.WriteLine($"FAIL {check.Name}: {problem}");
                notPassed.Add(check.Name);
                failed++;
            }
        }

        if (pendingSkips.Count > 0)
        {
            output.WriteLine(pendingSkips.Count == 1 ? pendingSkips[0] : $"skip the remaining {pendingSkips.Count} checks: each needs one that did not pass");
        }
        var duration = total.Elapsed.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture);
        output.WriteLine(failed == 0 && skipped == 0
            ? $"smoke: all {passed} checks passed against {target} in {duration} ms"
            : $"smoke: {failed} failed, {skipped} skipped, {passed} passed against {target}");
        return failed == 0 && skipped == 0;
    }

    private static string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + " s";
}
