using Dapper;
using Npgsql;

namespace Bench.SignalR.Hubs;

/// <summary>The hub's data access: Dapper over one data source, on the gateway's schema.</summary>
public sealed class ChatStore(NpgsqlDataSource dataSource)
{
    private const string FindMemberSql = """
        SELECT u.id AS UserId, u.display_name AS DisplayName,
               COALESCE(array_agg(p.conversation_id) FILTER (WHERE p.conversation_id IS NOT NULL), '{}') AS ConversationIds
        FROM user_profiles u
        LEFT JOIN conversation_participants p ON p.user_id = u.id AND p.is_active
        WHERE u.id = @UserId
        GROUP BY u.id, u.display_name
        """;

    public async Task<HubMember?> FindMemberAsync(long userId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<HubMember>(new CommandDefinition(FindMemberSql, new { UserId = userId }, cancellationToken: cancellationToken));
    }

    private const string IsMemberSql = """
        SELECT EXISTS (SELECT 1 FROM conversation_participants
                       WHERE conversation_id = @ConversationId AND user_id = @SenderId AND is_active)
        """;

    // The row lock taken here orders the conversation's writers until COMMIT, so seq has no gaps.
    private const string NextSeqSql = """
        UPDATE conversations
        SET last_seq = last_seq + 1, last_message_at = now(), last_message_preview = left(@Content, 100),
            last_message_sender_id = @SenderId, updated_at = now()
        WHERE id = @ConversationId
        RETURNING last_seq
        """;

    private const string InsertSql = """
        INSERT INTO messages (conversation_id, seq, sender_id, content, client_message_id)
        VALUES (@ConversationId, @Seq, @SenderId, @Content, @ClientMessageId)
        RETURNING id AS MessageId, seq AS Seq, created_at AS CreatedAt
        """;

    private const string UnreadSql = """
        UPDATE conversation_participants SET unread_count = unread_count + 1
        WHERE conversation_id = @ConversationId AND user_id <> @SenderId AND is_active
        """;

    /// <summary>Stores a message in one transaction; null when the sender is not a member.</summary>
    public async Task<StoredMessage?> StoreAsync(long senderId, SendMessageRequest request, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var parameters = new { request.ConversationId, SenderId = senderId, request.Content, request.ClientMessageId };
        if (!await connection.ExecuteScalarAsync<bool>(new CommandDefinition(IsMemberSql, parameters, transaction, cancellationToken: cancellationToken)))
        {
            return null;
        }
        var seq = await connection.ExecuteScalarAsync<long>(new CommandDefinition(NextSeqSql, parameters, transaction, cancellationToken: cancellationToken));
        var stored = await connection.QuerySingleAsync<StoredMessage>(new CommandDefinition(
            InsertSql, new { request.ConversationId, Seq = seq, SenderId = senderId, request.Content, request.ClientMessageId }, transaction, cancellationToken: cancellationToken));
        await connection.ExecuteAsync(new CommandDefinition(UnreadSql, parameters, transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);
        return stored;
    }
}

public sealed class HubMember
{
    public long UserId { get; init; }

    public required string DisplayName { get; init; }

    // A settable property rather than a constructor parameter: Dapper matches constructors by the reader's
    // field types, and a bigint[] column reports System.Array.
    public long[] ConversationIds { get; init; } = [];
}

public sealed record StoredMessage(long MessageId, long Seq, DateTime CreatedAt);
