using Dapper;
using Npgsql;

namespace Chat.Data.Messages;

public sealed class MessageRepository(NpgsqlDataSource dataSource, DatabaseResilience resilience)
{
    /// <summary>Name of the unique constraint that makes the client message id an idempotency key per sender.</summary>
    public const string IdempotencyConstraint = "messages_sender_client_message_key";

    // One round trip stores a message atomically:
    // - `next` takes the conversation's row lock and the next seq. Writers to one conversation queue on that
    //   lock, so seq follows commit order and a rolled-back insert gives its seq back: no gaps.
    // - `earlier` makes a sequential retry return the original message without writing anything.
    // - A concurrent retry passes `earlier` (its snapshot predates the twin's commit) and then fails on the
    //   unique idempotency key, which rolls back the whole statement, seq included; the caller reads the twin.
    // - `unread` increments every other active participant's unread count in SQL.
    private const string StoreSql = """
        WITH sender AS (
            SELECT 1 FROM conversation_participants
            WHERE conversation_id = @ConversationId AND user_id = @SenderId AND is_active
        ), earlier AS (
            SELECT id, conversation_id, seq, created_at FROM messages
            WHERE sender_id = @SenderId AND client_message_id = @ClientMessageId
        ), reply AS (
            SELECT @ReplyToMessageId::bigint IS NULL
                OR EXISTS (SELECT 1 FROM messages WHERE id = @ReplyToMessageId AND conversation_id = @ConversationId) AS ok
        ), next AS (
            UPDATE conversations
            SET last_seq = last_seq + 1,
                last_message_at = now(),
                last_message_preview = @Preview,
                last_message_sender_id = @SenderId,
                updated_at = now()
            WHERE id = @ConversationId
              AND EXISTS (SELECT 1 FROM sender)
              AND NOT EXISTS (SELECT 1 FROM earlier)
              AND (SELECT ok FROM reply)
            RETURNING last_seq
        ), inserted AS (
            INSERT INTO messages (conversation_id, seq, sender_id, content, message_type,
                                  reply_to_message_id, media_url, client_message_id)
            SELECT @ConversationId, last_seq, @SenderId, @Content, @MessageType,
                   @ReplyToMessageId, @MediaUrl, @ClientMessageId
            FROM next
            RETURNING id, seq, created_at
        ), unread AS (
            UPDATE conversation_participants
            SET unread_count = unread_count + 1
            WHERE conversation_id = @ConversationId AND user_id <> @SenderId AND is_active
              AND EXISTS (SELECT 1 FROM inserted)
        )
        SELECT 'Stored' AS Outcome, id AS Id, @ConversationId AS ConversationId, seq AS Seq, created_at AS CreatedAt FROM inserted
        UNION ALL
        SELECT 'Duplicate', id, conversation_id, seq, created_at FROM earlier
        UNION ALL
        SELECT CASE WHEN EXISTS (SELECT 1 FROM sender) THEN 'BadReply' ELSE 'NotMember' END,
               0, @ConversationId, 0, now()
        WHERE NOT EXISTS (SELECT 1 FROM earlier) AND NOT EXISTS (SELECT 1 FROM next)
        """;

    private const string FindBySenderKeySql = """
        SELECT 'Duplicate' AS Outcome, id AS Id, conversation_id AS ConversationId, seq AS Seq, created_at AS CreatedAt FROM messages
        WHERE sender_id = @SenderId AND client_message_id = @ClientMessageId
        """;

    /// <summary>
    /// Stores a message, or returns the one the sender already stored under the same client message id.
    /// Returns only after COMMIT: an ack built from the result never names an uncommitted message.
    /// </summary>
    public Task<StoreResult> StoreAsync(NewMessage message, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            try
            {
                var row = await connection.QuerySingleAsync<StoreRow>(new CommandDefinition(StoreSql, message, cancellationToken: ct));
                return row.ToResult();
            }
            catch (PostgresException e) when (e is { SqlState: PostgresErrorCodes.UniqueViolation, ConstraintName: IdempotencyConstraint })
            {
                var row = await connection.QuerySingleAsync<StoreRow>(new CommandDefinition(
                    FindBySenderKeySql, new { message.SenderId, message.ClientMessageId }, cancellationToken: ct));
                return row.ToResult();
            }
        }, cancellationToken).AsTask();

    // Per active conversation: the messages after the read position or, for a participant who never read,
    // every message since joining; at most @Limit + 1 each, the extra one only to tell whether more remain.
    // The second result set is read in the same snapshot, so lastSeq matches the messages returned.
    private const string CatchupSql = """
        SELECT m.id AS MessageId, m.conversation_id AS ConversationId, m.seq AS Seq, m.sender_id AS SenderId,
               u.display_name AS SenderName, u.avatar_url AS SenderAvatarUrl, m.content AS Content,
               m.message_type AS MessageType, m.reply_to_message_id AS ReplyToMessageId, m.media_url AS MediaUrl,
               m.client_message_id AS ClientMessageId, m.created_at AS CreatedAt,
               CASE WHEN m.is_edited THEN COALESCE(m.edited_at, m.created_at) END AS EditedAt
        FROM conversation_participants p
        LEFT JOIN messages r ON r.id = p.last_read_message_id
        CROSS JOIN LATERAL (
            SELECT * FROM messages m
            WHERE m.conversation_id = p.conversation_id
              AND m.seq > COALESCE(r.seq, 0)
              AND (r.id IS NOT NULL OR m.created_at >= p.joined_at)
              AND NOT m.is_deleted
            ORDER BY m.seq
            LIMIT @Limit + 1
        ) m
        JOIN user_profiles u ON u.id = m.sender_id
        WHERE p.user_id = @UserId AND p.is_active AND p.conversation_id = ANY(@ConversationIds)
        ORDER BY m.conversation_id, m.seq;

        SELECT c.id AS ConversationId, c.last_seq AS LastSeq, p.unread_count AS UnreadCount
        FROM conversation_participants p
        JOIN conversations c ON c.id = p.conversation_id
        WHERE p.user_id = @UserId AND p.is_active AND p.conversation_id = ANY(@ConversationIds)
        ORDER BY c.id;
        """;

    /// <summary>
    /// Reads what a connecting participant missed in the given conversations: up to
    /// <paramref name="limitPerConversation"/> + 1 messages each (the caller trims the extra one into hasMore).
    /// </summary>
    public Task<Catchup> CatchupAsync(long userId, IReadOnlyCollection<long> conversationIds, int limitPerConversation, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);
            using var results = await connection.QueryMultipleAsync(new CommandDefinition(
                CatchupSql,
                new { UserId = userId, ConversationIds = conversationIds.ToArray(), Limit = limitPerConversation },
                transaction,
                cancellationToken: ct));
            var messages = (await results.ReadAsync<StoredMessage>()).AsList();
            var conversations = (await results.ReadAsync<ConversationState>()).AsList();
            await transaction.CommitAsync(ct);
            return new Catchup(messages, conversations);
        }, cancellationToken).AsTask();

    private sealed class StoreRow
    {
        public required string Outcome { get; init; }
        public long Id { get; init; }
        public long ConversationId { get; init; }
        public long Seq { get; init; }
        public DateTime CreatedAt { get; init; }

        public StoreResult ToResult() => new(Enum.Parse<StoreOutcome>(Outcome), Id, ConversationId, Seq, CreatedAt);
    }
}
