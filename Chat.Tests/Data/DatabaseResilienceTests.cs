using System.Collections.Concurrent;
using Chat.Data;
using Npgsql;

namespace Chat.Tests.Data;

/// <summary>Which faults the retry pipeline retries, seen on a real pool of a real PostgreSQL.</summary>
public sealed class DatabaseResilienceTests
{
    private sealed class Retries : IDatabaseRetryObserver
    {
        public ConcurrentQueue<string> Faults { get; } = new();

        public void Retrying(string fault) => Faults.Enqueue(fault);
    }

    [Test]
    public async Task An_exhausted_pool_is_not_retried_and_still_counts_as_the_database_being_unavailable()
    {
        // One connection, waited for for one second: the test holds it, so every open waits that second and fails.
        var builder = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString) { MaxPoolSize = 1, Timeout = 1 };
        await using var source = NpgsqlDataSource.Create(builder.ConnectionString);
        await using var held = await source.OpenConnectionAsync();
        var retries = new Retries();
        var resilience = new DatabaseResilience(maxRetryAttempts: 3, baseDelay: TimeSpan.FromMilliseconds(10), retries);
        var attempts = 0;

        var failure = await Assert.ThrowsAsync<NpgsqlException>(async () => await resilience.ExecuteAsync(async ct =>
        {
            Interlocked.Increment(ref attempts);
            await using var connection = await source.OpenConnectionAsync(ct);
            return 1;
        }, CancellationToken.None));

        Assert.That(failure!.Message, Does.Contain("pool"), "the pool's own exception, not another fault");
        Assert.That(attempts, Is.EqualTo(1), "a retry only waits out the same pool timeout again: nothing is broken that a new attempt would replace");
        Assert.That(retries.Faults, Is.Empty);
        Assert.That(DatabaseResilience.IsUnavailable(failure), Is.True, "still answered as the database being unavailable (503, error internal)");
        Assert.That(RequestDatabase.CannotServe(failure), Is.True);
    }

    [Test]
    public async Task A_connection_broken_under_a_statement_is_retried_on_a_new_one()
    {
        var builder = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString) { ApplicationName = "resilience-broken" };
        await using var source = NpgsqlDataSource.Create(builder.ConnectionString);
        var retries = new Retries();
        var resilience = new DatabaseResilience(maxRetryAttempts: 3, baseDelay: TimeSpan.FromMilliseconds(10), retries);
        var attempts = 0;

        var answer = await resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await source.OpenConnectionAsync(ct);
            if (Interlocked.Increment(ref attempts) == 1)
            {
                // The server ends this backend (a restart, an administrator) while the gateway holds it.
                await using var kill = source.CreateCommand($"SELECT pg_terminate_backend({connection.ProcessID})");
                await kill.ExecuteNonQueryAsync(ct);
            }
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT 42";
            return (int)(await command.ExecuteScalarAsync(ct))!;
        }, CancellationToken.None);

        Assert.That(answer, Is.EqualTo(42));
        Assert.That(attempts, Is.EqualTo(2));
        Assert.That(retries.Faults, Has.Count.EqualTo(1));
    }
}
