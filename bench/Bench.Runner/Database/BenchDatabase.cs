using Bench.LoadGen;
using Bench.Runner.Machine;
using Dapper;
using Npgsql;

namespace Bench.Runner.Database;

/// <summary>The benchmark's database: the gateway's schema, seeded with users and conversations by direct SQL.</summary>
internal sealed class BenchDatabase(NpgsqlDataSource dataSource) : IAsyncDisposable
{
    private static readonly string[] ReportedSettings =
    [
        "server_version", "shared_buffers", "synchronous_commit", "fsync", "full_page_writes", "wal_level",
        "wal_buffers", "commit_delay", "max_wal_size", "checkpoint_timeout", "max_connections", "work_mem",
    ];

    public static BenchDatabase Create(string connectionString) => new(NpgsqlDataSource.Create(connectionString));

    public string Describe()
    {
        var builder = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString);
        return $"{builder.Host}:{builder.Port}/{builder.Database}";
    }

    public async Task ApplySchemaAsync(string schemaPath, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(await File.ReadAllTextAsync(schemaPath, cancellationToken), cancellationToken: cancellationToken));
    }

    // Empties every table and makes `Users` users in conversations of `GroupSize`, the first GroupSize users
    // in the first conversation and so on, then gives the conversations `History` messages between them, spread
    // evenly, every member having read them all. A production database has history; an empty `messages` table
    // is a cold start whose plans the first minutes of a run would measure (see bench/RESULTS.md). Ids follow
    // RESTART IDENTITY: conversation c holds users (c - 1) * GroupSize + 1 to c * GroupSize.
    private const string SeedSql = """
        TRUNCATE message_status, messages, conversation_participants, conversations, user_profiles RESTART IDENTITY CASCADE;

        INSERT INTO user_profiles (external_id, display_name)
        SELECT 'bench-' || i, 'User ' || i FROM generate_series(1, @Users) AS i;

        INSERT INTO conversations (title, is_group)
        SELECT 'bench ' || c, @GroupSize > 2 FROM generate_series(1, @Users / @GroupSize) AS c;

        INSERT INTO conversation_participants (conversation_id, user_id)
        SELECT c.id, u.id
        FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / @GroupSize AS slot FROM user_profiles) u
        JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS slot FROM conversations) c ON c.slot = u.slot;

        INSERT INTO messages (conversation_id, seq, sender_id, content, client_message_id, created_at, sent_at)
        SELECT c.id, s.seq, (c.id - 1) * @GroupSize + 1 + s.seq % @GroupSize,
               'history message ' || s.seq || ' of conversation ' || c.id, 'history-' || c.id || '-' || s.seq,
               now() - interval '1 day', now() - interval '1 day'
        FROM conversations c
        CROSS JOIN generate_series(1, @History / (@Users / @GroupSize)) AS s(seq)
        ORDER BY s.seq, c.id;

        UPDATE conversations c
        SET last_seq = m.last_seq, last_message_at = now() - interval '1 day',
            last_message_preview = 'history', last_message_sender_id = m.sender_id
        FROM (SELECT DISTINCT ON (conversation_id) conversation_id, seq AS last_seq, sender_id
              FROM messages ORDER BY conversation_id, seq DESC) m
        WHERE c.id = m.conversation_id;

        UPDATE conversation_participants p
        SET last_read_message_id = m.last_id, last_read_at = now() - interval '1 day'
        FROM (SELECT conversation_id, max(id) AS last_id FROM messages GROUP BY conversation_id) m
        WHERE p.conversation_id = m.conversation_id;
        """;

    // Vacuumed and analyzed, as the tables of a database in service are, so that autovacuum does not take on the
    // rows just written while the steps run (VACUUM cannot run inside the seed's transaction).
    private const string VacuumSql = "VACUUM (ANALYZE) user_profiles, conversations, conversation_participants, messages";

    // Then a checkpoint. Writing the history fills the WAL with ~100 MB at once, and the checkpoint that follows
    // (started by max_wal_size, spread over 90 % of checkpoint_timeout) otherwise writes those pages out during the
    // first minutes of the steps: on a machine whose fdatasync took 0.35 ms it made the first step's delivery p99
    // 220 ms against 7.8 ms with this checkpoint taken first (bench/RESULTS.md, "Two runs of 2026-12-04"). A
    // database in service checkpoints as it goes; a burst of a day's writes in seconds is the seed's.
    private const string CheckpointSql = "CHECKPOINT";

    private const string LayoutSql = """
        SELECT p.conversation_id AS ConversationId, u.id AS UserId, u.external_id AS ExternalId, u.display_name AS DisplayName
        FROM conversation_participants p JOIN user_profiles u ON u.id = p.user_id
        ORDER BY p.conversation_id, u.id
        """;

    /// <summary>
    /// Replaces everything in the database with <paramref name="users"/> users in conversations of
    /// <paramref name="groupSize"/>, and <paramref name="history"/> messages already read among them.
    /// </summary>
    public async Task<BenchLayout> SeedAsync(int users, int groupSize, int history, CancellationToken cancellationToken)
    {
        if (users % groupSize != 0)
        {
            throw new ArgumentException($"{users} users do not split into conversations of {groupSize}.", nameof(users));
        }
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(SeedSql, new { Users = users, GroupSize = groupSize, History = history }, cancellationToken: cancellationToken, commandTimeout: 300));
        await connection.ExecuteAsync(new CommandDefinition(VacuumSql, cancellationToken: cancellationToken, commandTimeout: 300));
        try
        {
            // Text, said outright: Dapper takes a command of one word for the name of a stored procedure.
            await connection.ExecuteAsync(new CommandDefinition(CheckpointSql, commandType: System.Data.CommandType.Text, cancellationToken: cancellationToken, commandTimeout: 300));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            // CHECKPOINT needs a superuser or the pg_checkpoint role: without it the first step pays for the seed.
            Console.Error.WriteLine($"bench: the database user may not run CHECKPOINT ({e.MessageText}); the first step may measure the seed's checkpoint");
        }
        var rows = await connection.QueryAsync<LayoutRow>(new CommandDefinition(LayoutSql, cancellationToken: cancellationToken));
        return new BenchLayout([.. rows
            .GroupBy(r => r.ConversationId)
            .Select(g => new BenchConversation(g.Key, [.. g.Select(r => new BenchUser(r.UserId, r.ExternalId, r.DisplayName))]))]);
    }

    public async Task<long> CountMessagesAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition("SELECT count(*) FROM messages", cancellationToken: cancellationToken));
    }

    public async Task<IReadOnlyList<(string Name, string Value)>> SettingsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string, string)>(new CommandDefinition(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(@Names)", new { Names = ReportedSettings }, cancellationToken: cancellationToken));
        var byName = rows.ToDictionary(r => r.Item1, r => r.Item2);
        return [.. ReportedSettings.Where(byName.ContainsKey).Select(n => (n, byName[n]))];
    }

    /// <summary>
    /// The PostgreSQL server's main process when it runs on this machine (the parent of this connection's
    /// backend), so that the cluster's CPU can be read from /proc; null when it runs elsewhere.
    /// </summary>
    public async Task<int?> PostmasterPidAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        var backend = await connection.ExecuteScalarAsync<int>(new CommandDefinition("SELECT pg_backend_pid()", cancellationToken: cancellationToken));
        if (!ProcFs.Available || ProcFs.CommandOf(backend) is not "postgres" || ProcFs.ParentOf(backend) is not { } parent)
        {
            return null;
        }
        return ProcFs.CommandOf(parent) is "postgres" ? parent : null;
    }

    /// <summary>The backends connected to this database, the benchmark's own connection included.</summary>
    public async Task<IReadOnlyList<int>> BackendPidsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<int>(new CommandDefinition(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'", cancellationToken: cancellationToken))).AsList();
    }

    public ValueTask DisposeAsync() => dataSource.DisposeAsync();

    private sealed record LayoutRow(long ConversationId, long UserId, string ExternalId, string DisplayName);
}
