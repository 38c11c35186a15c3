using Npgsql;
using Polly;
using Polly.Retry;

namespace Chat.Data;

/// <summary>
/// The one retry pipeline for transient database faults (a restarted server, a broken pooled connection).
/// Every repository call goes through it, so only idempotent work may be passed in: message inserts are
/// made idempotent by the per-sender client message id, reads and read receipts are idempotent by nature.
/// </summary>
public sealed class DatabaseResilience
{
    public DatabaseResilience() : this(maxRetryAttempts: 3, baseDelay: TimeSpan.FromMilliseconds(100)) { }

    /// <param name="observer">Told of every retry, so that an operator can see faults that a retry hid.</param>
    public DatabaseResilience(IDatabaseRetryObserver? observer) : this(maxRetryAttempts: 3, baseDelay: TimeSpan.FromMilliseconds(100), observer) { }

    public DatabaseResilience(int maxRetryAttempts, TimeSpan baseDelay, IDatabaseRetryObserver? observer = null)
    {
        Pipeline = new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(IsTransient),
                MaxRetryAttempts = maxRetryAttempts,
                Delay = baseDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                OnRetry = args =>
                {
                    if (args.Outcome.Exception is { } fault)
                    {
                        observer?.Retrying(FaultName(fault));
                    }
                    return default;
                },
            })
            .Build();
    }

    /// <summary>A retried fault's name: its SQLSTATE when the server sent one, <c>connection</c> when the connection broke.</summary>
    public static string FaultName(Exception fault) => fault is PostgresException postgres ? postgres.SqlState : "connection";

    public ResiliencePipeline Pipeline { get; }

    public ValueTask<T> ExecuteAsync<T>(Func<CancellationToken, ValueTask<T>> work, CancellationToken cancellationToken) =>
        Pipeline.ExecuteAsync(work, cancellationToken);

    /// <summary>
    /// The database could not be reached or did not answer in time, through the retries: a transient fault, or
    /// Npgsql's timeout (a server that accepts connections but does not answer). Not a statement the server refused.
    /// </summary>
    public static bool IsUnavailable(Exception exception) =>
        IsTransient(exception) || exception is NpgsqlException { InnerException: TimeoutException };

    /// <summary>
    /// The server refuses the gateway for a reason that retrying cannot cure and its operator must: a rejected
    /// password or role (class 28), the database or schema gone (3D000, 3F000), the tables not there (42P01: the
    /// schema not applied), or out of resources (class 53: disk full, too many connections).
    /// </summary>
    public static bool IsOperatorFault(Exception exception) =>
        exception is PostgresException { SqlState: var state }
        && (state.StartsWith("28", StringComparison.Ordinal) || state.StartsWith("53", StringComparison.Ordinal) || state is "3D000" or "3F000" or "42P01");

    public static bool IsTransient(Exception exception) => exception switch
    {
        // Npgsql calls every timeout transient, its pool's among them. That one is no fault to retry: the pool has
        // already waited its full connect Timeout (15 s) for a connection, nothing is broken that a new attempt would
        // replace, and each retry waited that long again while the frame, the request or the batch held on (a minute
        // in all). It fails at once instead; IsUnavailable still counts it as the database being unavailable.
        NpgsqlException when IsPoolExhausted(exception) => false,
        NpgsqlException { IsTransient: true } => true,
        // Npgsql reports a server that went away mid-command as an IOException or a broken-connection NpgsqlException.
        NpgsqlException { InnerException: IOException or System.Net.Sockets.SocketException } => true,
        // 57P01 admin_shutdown (pg_terminate_backend, a restart), 57P02 crash_shutdown, 57P03 cannot_connect_now.
        PostgresException { SqlState: "57P01" or "57P02" or "57P03" } => true,
        _ => false,
    };

    /// <summary>
    /// No pooled connection became free within the connect <c>Timeout</c>. Npgsql throws a plain
    /// <see cref="NpgsqlException"/> around a <see cref="TimeoutException"/> for it, told apart from a connect or
    /// command timeout only by its message (DatabaseResilienceTests pins it to the Npgsql in use).
    /// </summary>
    public static bool IsPoolExhausted(Exception exception) =>
        exception is NpgsqlException { InnerException: TimeoutException } e
        && e.Message.StartsWith("The connection pool has been exhausted", StringComparison.Ordinal);
}

/// <summary>Told of each retry of <see cref="DatabaseResilience"/>.</summary>
public interface IDatabaseRetryObserver
{
    /// <param name="fault">See <see cref="DatabaseResilience.FaultName"/>.</param>
    void Retrying(string fault);
}
