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
    /// <summary>The position of the message's latest edit or deletion among the conversation's changes; null when never changed.</summary>
    public long? ChangeSeq { get; init; }

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
        ChangeSeq = ChangeSeq,
    };
}

/// <param name="Messages">In ascending seq order.</param>
/// <param name="HasMore">More messages lie beyond the page in the direction it was read.</param>
/// <param name="LastSeq">The conversation's last seq in the same snapshot as the page.</param>
/// <param name="LastChangeSeq">The conversation's latest change in that snapshot: the page shows every change up to it.</param>
public sealed record HistoryPage(IReadOnlyList<HistoryMessage> Messages, bool HasMore, long LastSeq, long LastChangeSeq);

/// <summary>One answer to <c>sync</c>, read in one snapshot.</summary>
/// <param name="Changes">Messages at or before the client's afterSeq changed after its afterChangeSeq, in change order.</param>
/// <param name="Messages">Messages after afterSeq, in seq order; empty when the changes filled the page.</param>
/// <param name="HasMore">More changes or messages follow: sync again from <paramref name="LastSeq"/> and <paramref name="LastChangeSeq"/>.</param>
/// <param name="LastSeq">The last seq the client holds after this page.</param>
/// <param name="LastChangeSeq">
/// The last change the client holds after this page; null when the client holds messages (afterSeq above 0) but
/// named no change position, since changes to those were not replayed.
/// </param>
public sealed record SyncPage(IReadOnlyList<HistoryMessage> Changes, IReadOnlyList<HistoryMessage> Messages, bool HasMore, long LastSeq, long? LastChangeSeq);

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
        m.is_deleted AS IsDeleted, m.deleted_at AS DeletedAt, m.change_seq AS ChangeSeq
        """;

    // The membership check and the conversation's last seq come first, in the same snapshot as the page.
    private const string MembershipSql = """
        SELECT c.last_seq AS LastSeq, c.last_change_seq AS LastChangeSeq
        FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id
        WHERE p.conversation_id = @ConversationId AND p.user_id = @UserId AND p.is_active;
        """;

    // Forward: the first @Limit + 1 after @AfterSeq (the extra row only tells whether more follow).
    private const string ForwardPageSql = $"""

        SELECT {Columns}
        FROM messages m JOIN user_profiles u ON u.id = m.sender_id
        WHERE m.conversation_id = @ConversationId AND m.seq > @AfterSeq
          AND (@BeforeSeq::bigint IS NULL OR m.seq < @BeforeSeq)
        ORDER BY m.seq
        LIMIT @Limit + 1;
        """;

    private const string ForwardSql = MembershipSql + ForwardPageSql;

    // Changes the client missed to messages it holds (seq up to @AfterSeq): the first @Limit + 1 after
    // @AfterChangeSeq, through the partial index on (conversation_id, change_seq). Messages after @AfterSeq are not
    // among them: the page sends those as they are now.
    private const string ChangesSql = $"""

        SELECT {Columns}
        FROM messages m JOIN user_profiles u ON u.id = m.sender_id
        WHERE m.conversation_id = @ConversationId AND m.change_seq > @AfterChangeSeq AND m.seq <= @AfterSeq
        ORDER BY m.change_seq
        LIMIT @Limit + 1;
        """;

    private const string SyncSql = MembershipSql + ChangesSql + ForwardPageSql;

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
            var positions = await results.ReadSingleOrDefaultAsync<Positions>();
            var rows = (await results.ReadAsync<HistoryMessage>()).AsList();
            await transaction.CommitAsync(ct);
            if (positions is null)
            {
                return null;
            }
            var hasMore = TrimToLimit(rows, limit);
            if (afterSeq is null)
            {
                rows.Reverse();
            }
            return new HistoryPage(rows, hasMore, positions.LastSeq, positions.LastChangeSeq);
        }, cancellationToken).AsTask();

    /// <summary>
    /// The answer to <c>sync</c> for an active member, or null when <paramref name="userId"/> is not one: with
    /// <paramref name="afterChangeSeq"/>, first the changes made since then to messages up to
    /// <paramref name="afterSeq"/>, then the messages after <paramref name="afterSeq"/>; at most
    /// <paramref name="limit"/> of each. When more changes remain, the page holds changes only, so that a client
    /// that pages on never skips one.
    /// </summary>
    public Task<SyncPage?> SyncAsync(long conversationId, long userId, long afterSeq, long? afterChangeSeq, int limit, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);
            using var results = await connection.QueryMultipleAsync(new CommandDefinition(
                SyncSql,
                // Without a change position, no change qualifies: every change_seq is at most long.MaxValue.
                new { ConversationId = conversationId, UserId = userId, AfterSeq = afterSeq, AfterChangeSeq = afterChangeSeq ?? long.MaxValue, BeforeSeq = (long?)null, Limit = limit },
                transaction,
                cancellationToken: ct));
            var positions = await results.ReadSingleOrDefaultAsync<Positions>();
            var changes = (await results.ReadAsync<HistoryMessage>()).AsList();
            var messages = (await results.ReadAsync<HistoryMessage>()).AsList();
            await transaction.CommitAsync(ct);
            if (positions is null)
            {
                return null;
            }
            if (TrimToLimit(changes, limit))
            {
                return new SyncPage(changes, [], HasMore: true, Math.Min(afterSeq, positions.LastSeq), changes[^1].ChangeSeq!.Value);
            }
            var hasMore = TrimToLimit(messages, limit);
            // The replayed range is contiguous (tombstones included), so the client now holds everything up to here.
            // Never more than the conversation has: a position beyond its end (a client that kept its state across a
            // restore of the database from a backup) is answered with the real end, lower than what was sent, so that
            // the client learns it and does not take the next messages for ones it already holds.
            var lastSeq = messages.Count > 0 ? messages[^1].Seq : positions.LastSeq;
            // Of this snapshot's changes, one to a message up to lastSeq was replayed above or is in the message as
            // sent now, and one to a later message will be in that message when a later page sends it. That holds
            // only when the client said which changes it has, or holds no message from before afterSeq.
            var lastChangeSeq = afterChangeSeq is not null || afterSeq == 0 ? positions.LastChangeSeq : (long?)null;
            return new SyncPage(changes, messages, hasMore, lastSeq, lastChangeSeq);
        }, cancellationToken).AsTask();

    /// <summary>Drops the extra row read past <paramref name="limit"/>; true when there was one (more follow).</summary>
    private static bool TrimToLimit(List<HistoryMessage> rows, int limit)
    {
        if (rows.Count <= limit)
        {
            return false;
        }
        rows.RemoveRange(limit, rows.Count - limit);
        return true;
    }

    private sealed record Positions(long LastSeq, long LastChangeSeq);
}
