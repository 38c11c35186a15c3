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

    public static Task<long> MessageCountAsync(long conversationId) =>
        ScalarAsync<long>("SELECT count(*) FROM messages WHERE conversation_id = @conversationId", new { conversationId });

    public static Task<int> UnreadCountAsync(long conversationId, long userId) =>
        ScalarAsync<int>("SELECT unread_count FROM conversation_participants WHERE conversation_id = @conversationId AND user_id = @userId",
            new { conversationId, userId });
}
