using System.Collections.Concurrent;
using Chat.Data;

namespace Chat.Tests.Data;

/// <summary>The deadline of a request's database work (<see cref="RequestDatabase.WithinAsync"/>).</summary>
public sealed class RequestDatabaseTests
{
    private sealed class LateFailure(string message) : Exception(message);

    [Test]
    public async Task Work_given_up_at_the_deadline_that_fails_later_has_its_failure_observed()
    {
        var unobserved = new ConcurrentQueue<Exception>();
        EventHandler<UnobservedTaskExceptionEventArgs> record = (_, e) =>
        {
            if (e.Exception.InnerExceptions.Any(x => x is LateFailure))
            {
                unobserved.Enqueue(e.Exception);
            }
        };
        TaskScheduler.UnobservedTaskException += record;
        try
        {
            var failed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await GiveUpOnWorkThatFailsLaterAsync(failed);
            await failed.Task;
            // The work throws just after it says so.
            await Task.Delay(100);
            for (var round = 0; round < 3; round++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
            Assert.That(unobserved, Is.Empty, "the failure of work nobody waits for is observed");
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= record;
        }
    }

    /// <summary>Kept out of the test's own method, so that nothing of the abandoned work stays reachable from there.</summary>
    private static async Task GiveUpOnWorkThatFailsLaterAsync(TaskCompletionSource failed)
    {
        var thrown = await Assert.ThrowsAsync<TimeoutException>(() => RequestDatabase.WithinAsync<int>(async _ =>
        {
            // Ignores its token, as a connection open to a server that never answers does, then fails.
            await Task.Delay(300, CancellationToken.None);
            failed.SetResult();
            throw new LateFailure("the database answered, with an error, after the deadline");
        }, TimeSpan.FromMilliseconds(50), CancellationToken.None));
        Assert.That(thrown!.Message, Does.Contain("Chat:Database:RequestTimeout"));
    }
}
