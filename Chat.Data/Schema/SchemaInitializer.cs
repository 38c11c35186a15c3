using Npgsql;

namespace Chat.Data.Schema;

/// <summary>Applies <c>schema.sql</c>, which is idempotent.</summary>
public sealed class SchemaInitializer(NpgsqlDataSource dataSource)
{
    // Several gateways (or test hosts) may start at once: CREATE ... IF NOT EXISTS is not safe against a
    // concurrent twin, so the script runs under a transaction-scoped advisory lock.
    private const string LockSql = "SELECT pg_advisory_xact_lock(7391005)";

    public async Task ApplyAsync(string schemaPath, CancellationToken cancellationToken)
    {
        var script = await File.ReadAllTextAsync(schemaPath, cancellationToken);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var lockCommand = new NpgsqlCommand(LockSql, connection, transaction))
        {
            await lockCommand.ExecuteNonQueryAsync(cancellationToken);
        }
        await using (var command = new NpgsqlCommand(script, connection, transaction))
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
    }
}
