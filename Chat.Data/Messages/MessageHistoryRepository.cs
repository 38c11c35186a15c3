using Dapper;
using Npgsql;

namespace Chat.Data.Messages;

/// <summary>A message as history and replay show it: current content, or a tombstone when deleted.</summary>
public sealed class HistoryMessage
{
    public long MessageId { get; init; }
    public long ConversationId { get; init; }
    public long Seq { get; init; }
    public long SenderId { get; init; }
    public required string SenderName { get; init; }
    public string? SenderAvatarUrl { get; init; }
    /// <summary>Null for a deleted message.</summary>
    public string? Content { get; init; }
    public required string MessageType { get; init; }
    public long? ReplyToMessageId { get; init; }
    public string? MediaUrl { get; init; }
    public required string ClientMessageId { get; init; }
    public DateTime CreatedAt { get; init; }
    public DateTime? EditedAt { get; init; }
    public bool IsDeleted { get; init; }
    public DateTime? DeletedAt { get; init; }

    public StoredMessage ToStored() => new()
    {
        MessageId = MessageId,
        ConversationId = ConversationId,
        Seq = Seq,
        SenderId = SenderId,
        SenderName = SenderName,
        SenderAvatarUrl = SenderAvatarUrl,
        Content = Content ?? throw new InvalidOperationException($"Message {MessageId} is deleted: it has no content."),
        MessageType = MessageType,
        ReplyToMessageId = ReplyToMessageId,
        MediaUrl = MediaUrl,
        ClientMessageId = ClientMessageId,
        CreatedAt = CreatedAt,
        EditedAt = EditedAt,
    };
}

/// <param name="Messages">In ascending seq order.</param>
/// <param name="HasMore">More messages lie beyond the page in the direction it was read.</param>
/// <param name="LastSeq">The conversation's last seq in the same snapshot as the page.</param>
public sealed record HistoryPage(IReadOnlyList<HistoryMessage> Messages, bool HasMore, long LastSeq);

/// <summary>Reads stored history for <c>sync</c> and the HTTP history endpoint: any range, however old.</summary>
public sealed class MessageHistoryRepository(NpgsqlDataSource dataSource, DatabaseResilience resilience)
{
    private const string Columns = """
        m.id AS MessageId, m.conversation_id AS ConversationId, m.seq AS Seq, m.sender_id AS SenderId,
        u.display_name AS SenderName, u.avatar_url AS SenderAvatarUrl,
        CASE WHEN m.is_deleted THEN NULL ELSE m.content END AS Content,
        m.message_type AS MessageType, m.reply_to_message_id AS ReplyToMessageId,
        CASE WHEN m.is_deleted THEN NULL ELSE m.media_url END AS MediaUrl,
        m.client_message_id AS ClientMessageId, m.created_at AS CreatedAt,
        CASE WHEN m.is_edited THEN COALESCE(m.edited_at, m.created_at) END AS EditedAt,
        m.is_deleted AS IsDeleted, m.deleted_at AS DeletedAt
        """;

    // The membership check and the conversation's last seq come first, in the same snapshot as the page.
    private const string MembershipSql = """
        SELECT c.last_seq
        FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id
        WHERE p.conversation_id = @ConversationId AND p.user_id = @UserId AND p.is_active;
        """;

    // Forward: the first @Limit + 1 after @AfterSeq (the extra row only tells whether more follow).
    private const string ForwardSql = MembershipSql + $"""

        SELECT {Columns}
        FROM messages m JOIN user_profiles u ON u.id = m.sender_id
        WHERE m.conversation_id = @ConversationId AND m.seq > @AfterSeq
          AND (@BeforeSeq::bigint IS NULL OR m.seq < @BeforeSeq)
        ORDER BY m.seq
        LIMIT @Limit + 1;
        """;

    // Backward: the last @Limit + 1 before @BeforeSeq, newest first; the caller reverses them.
    private const string BackwardSql = MembershipSql + $"""

        SELECT {Columns}
        FROM messages m JOIN user_profiles u ON u.id = m.sender_id
        WHERE m.conversation_id = @ConversationId
          AND (@BeforeSeq::bigint IS NULL OR m.seq < @BeforeSeq)
        ORDER BY m.seq DESC
        LIMIT @Limit + 1;
        """;

    /// <summary>
    /// A page of a conversation's history for an active member, or null when <paramref name="userId"/> is not
    /// one (or the conversation does not exist). With <paramref name="afterSeq"/>, reads forward from it;
    /// otherwise reads back from <paramref name="beforeSeq"/> (or from the newest message).
    /// </summary>
    public Task<HistoryPage?> ReadAsync(long conversationId, long userId, long? afterSeq, long? beforeSeq, int limit, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            // One snapshot for the membership row, lastSeq and the page.
            await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);
            using var results = await connection.QueryMultipleAsync(new CommandDefinition(
                afterSeq is null ? BackwardSql : ForwardSql,
                new { ConversationId = conversationId, UserId = userId, AfterSeq = afterSeq ?? 0, BeforeSeq = beforeSeq, Limit = limit },
                transaction,
                cancellationToken: ct));
            var lastSeq = await results.ReadSingleOrDefaultAsync<long?>();
            var rows = (await results.ReadAsync<HistoryMessage>()).AsList();
            await transaction.CommitAsync(ct);
            if (lastSeq is null)
            {
                return null;
            }
            var hasMore = rows.Count > limit;
            if (hasMore)
            {
                rows.RemoveAt(rows.Count - 1);
            }
            if (afterSeq is null)
            {
                rows.Reverse();
            }
            return new HistoryPage(rows, hasMore, lastSeq.Value);
        }, cancellationToken).AsTask();
}
