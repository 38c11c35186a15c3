using Dapper;

namespace Chat.Tests.Infrastructure;

/// <summary>Direct reads of the test database, to check what the gateway stored.</summary>
public static class Sql
{
    public static async Task<T> ScalarAsync<T>(string sql, object? parameters = null)
    {
        await using var connection = await TestDatabase.DataSource.OpenConnectionAsync();
        return (await connection.ExecuteScalarAsync<T>(sql, parameters))!;
    }

    public static async Task<List<T>> QueryAsync<T>(string sql, object? parameters = null)
    {
        await using var connection = await TestDatabase.DataSource.OpenConnectionAsync();
        return (await connection.QueryAsync<T>(sql, parameters)).AsList();
    }

    public static async Task ExecuteAsync(string sql, object? parameters = null)
    {
        await using var connection = await TestDatabase.DataSource.OpenConnectionAsync();
        await connection.ExecuteAsync(sql, parameters);
    }

    /// <summary>
    /// Runs <paramref name="selectForUpdate"/> in a transaction that keeps its row locks until disposed, to hold
    /// the gateway at a chosen point of its own SQL.
    /// </summary>
    public static async Task<IAsyncDisposable> HoldAsync(string selectForUpdate, object parameters)
    {
        var connection = await TestDatabase.DataSource.OpenConnectionAsync();
        var transaction = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync(selectForUpdate, parameters, transaction);
        return connection;
    }

    /// <summary>Backends of the test database waiting for a lock.</summary>
    public static Task<long> LockWaitersAsync() =>
        ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");

    public static Task<long> MessageCountAsync(long conversationId) =>
        ScalarAsync<long>("SELECT count(*) FROM messages WHERE conversation_id = @conversationId", new { conversationId });

    public static Task<int> UnreadCountAsync(long conversationId, long userId) =>
        ScalarAsync<int>("SELECT unread_count FROM conversation_participants WHERE conversation_id = @conversationId AND user_id = @userId",
            new { conversationId, userId });
}
