using Dapper;
using Npgsql;

namespace Chat.Data.Conversations;

public sealed class ConversationRepository(NpgsqlDataSource dataSource, DatabaseResilience resilience)
{
    private const string ActiveConversationIdsSql = """
        SELECT conversation_id FROM conversation_participants
        WHERE user_id = @UserId AND is_active
        ORDER BY conversation_id
        """;

    public Task<IReadOnlyList<long>> ActiveConversationIdsAsync(long userId, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync<IReadOnlyList<long>>(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            var ids = await connection.QueryAsync<long>(new CommandDefinition(ActiveConversationIdsSql, new { UserId = userId }, cancellationToken: ct));
            return ids.AsList();
        }, cancellationToken).AsTask();

    // One statement: the conversation and all its participants, or nothing.
    private const string CreateSql = """
        WITH created AS (
            INSERT INTO conversations (title, is_group) VALUES (@Title, @IsGroup)
            RETURNING id
        ), members AS (
            INSERT INTO conversation_participants (conversation_id, user_id)
            SELECT created.id, member.id FROM created, unnest(@MemberIds) AS member(id)
        )
        SELECT id FROM created
        """;

    /// <summary>Creates a conversation whose members are the given user ids. Not retried: it is not idempotent.</summary>
    public async Task<long> CreateAsync(string? title, bool isGroup, IReadOnlyCollection<long> memberIds, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            CreateSql, new { Title = title, IsGroup = isGroup, MemberIds = memberIds.Distinct().ToArray() }, cancellationToken: cancellationToken));
    }
}
