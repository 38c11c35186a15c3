namespace Chat.Data;

/// <summary>
/// The database work of a request (an API call, a WebSocket handshake and the catch-up that follows it, a <c>sync</c>,
/// <c>read</c>, <c>edit</c> or <c>delete</c> frame): bounded by <c>Chat:Database:RequestTimeout</c>, and answered 503 (a
/// socket's catch-up: closed with 1011; a frame: <c>error internal</c>) when the database cannot serve it.
/// </summary>
public static class RequestDatabase
{
    /// <summary>
    /// Runs <paramref name="work"/> with a token cancelled at <paramref name="timeout"/>, so that its retries stop
    /// then, and stops waiting for it at that time even when Npgsql does not: opening a connection to a server that
    /// accepted it but never answers ignores the token until Npgsql's own connect timeout (15 s).
    /// </summary>
    /// <exception cref="TimeoutException">The database did not answer within <paramref name="timeout"/>.</exception>
    public static async Task<T> WithinAsync<T>(Func<CancellationToken, Task<T>> work, TimeSpan timeout, CancellationToken requestAborted)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
        deadline.CancelAfter(timeout);
        var running = work(deadline.Token);
        try
        {
            return await running.WaitAsync(timeout, requestAborted);
        }
        // WaitAsync's own TimeoutException and the token's cancellation come at the same moment: either way the
        // message names the setting.
        catch (Exception e) when (e is OperationCanceledException or TimeoutException && !requestAborted.IsCancellationRequested)
        {
            ObserveLateFailure(running);
            throw new TimeoutException($"The database did not answer within {timeout} (Chat:Database:RequestTimeout).");
        }
        catch (OperationCanceledException)
        {
            ObserveLateFailure(running);
            throw;
        }
    }

    // Nobody waits for work given up on, which may still fail (its deadline's cancellation among the ways): its
    // failure is observed, so that the finalizer does not report it as unobserved.
    private static void ObserveLateFailure(Task running) =>
        running.ContinueWith(static task => _ = task.Exception, CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    /// <summary>
    /// A failure that says the database cannot serve requests now, answered 503: unreachable or not answering
    /// through the retries, or refusing the gateway for a reason its operator must cure (see
    /// <see cref="DatabaseResilience.IsOperatorFault"/>). Any other failure is a bug and stays a 500.
    /// </summary>
    public static bool CannotServe(Exception exception) =>
        exception is TimeoutException || DatabaseResilience.IsUnavailable(exception) || DatabaseResilience.IsOperatorFault(exception);
}
