using Dapper;
using Npgsql;

namespace Chat.Data.Messages;

public enum EditOutcome
{
    /// <summary>Edited now (or deleted now, for a delete).</summary>
    Done,
    /// <summary>Delete only: it was already deleted; nothing changed.</summary>
    AlreadyDeleted,
    /// <summary>The user is not an active member of the conversation, or it does not exist.</summary>
    NotMember,
    /// <summary>No such message in the conversation.</summary>
    NotFound,
    /// <summary>Edit only: the message is deleted.</summary>
    Deleted,
    /// <summary>The message is someone else's.</summary>
    NotSender,
}

/// <param name="Seq">The message's seq (0 when not found).</param>
/// <param name="At">When the edit or deletion was stored.</param>
/// <param name="ChangeSeq">The change's position in the conversation's changes (see schema.sql); for a repeated delete, the deletion's; 0 when nothing was changed.</param>
public sealed record EditResult(EditOutcome Outcome, long Seq, DateTime At, long ChangeSeq);

/// <summary>Edits and deletes of a sender's own messages, with the conversation preview and unread counts kept exact.</summary>
/// <remarks>
/// The token cancels the waits (for a pooled connection, for the conversation's lock) and the statements, whose
/// transaction then rolls back; the COMMIT, once sent, is not cancelled. A cancellation that came while it ran would
/// otherwise throw for a change the server had stored, and the caller, told it failed, would never announce it.
/// </remarks>
public sealed class MessageEditRepository(NpgsqlDataSource dataSource, DatabaseResilience resilience)
{
    // The conversation row lock (which message inserts also take) is held first, in a statement of its own, so
    // that the change's statement reads after it and "is this the latest visible message" cannot change under the
    // preview update. It is taken only for an active member: anyone may name any conversation id, and an
    // outsider's edit or delete must not hold up the message writer, which waits for this lock, while it is
    // refused. A member's removal takes the same lock, so a member who holds it stays one until the commit.
    // The change is stamped with statement_timestamp(), after the lock, as messages are: within a conversation
    // the times of changes follow their change_seq.
    private const string LockConversationForMemberSql = """
        SELECT 1 FROM conversations c
        WHERE c.id = @ConversationId
          AND EXISTS (SELECT 1 FROM conversation_participants p
                      WHERE p.conversation_id = c.id AND p.user_id = @UserId AND p.is_active)
        FOR UPDATE OF c
        """;

    private const string TargetCtes = """
        WITH member AS (
            SELECT 1 FROM conversation_participants
            WHERE conversation_id = @ConversationId AND user_id = @UserId AND is_active
        ), target AS (
            SELECT id, seq, sender_id, is_deleted, created_at, content, is_edited, edited_at, change_seq FROM messages
            WHERE id = @MessageId AND conversation_id = @ConversationId
        )
        """;

    private const string OutcomeColumns = """
        CASE WHEN NOT EXISTS (SELECT 1 FROM member) THEN 'NotMember'
             WHEN NOT EXISTS (SELECT 1 FROM target) THEN 'NotFound'
             WHEN (SELECT sender_id FROM target) <> @UserId THEN 'NotSender'
        """;

    // The change is allowed (a member's own message that is not deleted): the conversation's row takes the next
    // change_seq, and with it, one update of that row in this statement, the preview when this is the latest
    // visible message. An edit to the content the message already has from an edit (`same`) changes nothing and
    // answers with that edit's change: a retry whose first attempt committed unseen must not take a second
    // change_seq, since the first would then be announced nowhere and clients would wait for it.
    // "Is there a visible message after it" asks for the first such seq (ORDER BY seq LIMIT 1) rather than EXISTS:
    // the planner answers an EXISTS in this SET clause by reading messages from the table's start when the
    // conversation holds a large share of the table (HotConversationPlanTests), and for a recent message, the
    // one usually edited, that meant the whole table, under the conversation's row lock that its message writes
    // wait for. The ordered form walks the (conversation_id, seq) key from the message on.
    internal const string EditSql = $"""
        {TargetCtes}
        , same AS (
            SELECT edited_at, change_seq FROM target WHERE is_edited AND content = @Content AND change_seq IS NOT NULL
        ), changed AS (
            UPDATE conversations c
            SET last_change_seq = c.last_change_seq + 1,
                last_message_preview = CASE
                    WHEN (SELECT later.seq FROM messages later
                          WHERE later.conversation_id = @ConversationId AND later.seq > t.seq AND NOT later.is_deleted
                          ORDER BY later.seq LIMIT 1) IS NOT NULL
                    THEN c.last_message_preview ELSE @Preview END,
                updated_at = now()
            FROM target t
            WHERE c.id = @ConversationId AND t.sender_id = @UserId AND NOT t.is_deleted AND EXISTS (SELECT 1 FROM member)
              AND NOT EXISTS (SELECT 1 FROM same)
            RETURNING c.last_change_seq
        ), edited AS (
            UPDATE messages m SET content = @Content, is_edited = true, edited_at = statement_timestamp(), change_seq = k.last_change_seq
            FROM target t, changed k
            WHERE m.id = t.id
            RETURNING m.edited_at, m.change_seq
        )
        SELECT {OutcomeColumns}
                     WHEN (SELECT is_deleted FROM target) THEN 'Deleted'
                     ELSE 'Done' END AS Outcome,
               COALESCE((SELECT seq FROM target), 0) AS Seq,
               COALESCE((SELECT edited_at FROM edited), (SELECT edited_at FROM same), now()) AS At,
               COALESCE((SELECT change_seq FROM edited), (SELECT change_seq FROM same), 0) AS ChangeSeq,
               false AS WasLatest, NULL::text AS PreviousContent, NULL::bigint AS PreviousSenderId;
        """;

    /// <summary>Replaces the content of the user's own message; <paramref name="preview"/> is its new preview.</summary>
    public Task<EditResult> EditAsync(long conversationId, long messageId, long userId, string content, string preview, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            // Retrying is safe: a repeated edit finds the content in place and answers with the same change.
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            if (!await LockForMemberAsync(connection, transaction, conversationId, userId, ct))
            {
                return NotMember;
            }
            var row = await connection.QuerySingleAsync<EditRow>(new CommandDefinition(
                EditSql,
                new { ConversationId = conversationId, MessageId = messageId, UserId = userId, Content = content, Preview = preview },
                transaction,
                cancellationToken: ct));
            await transaction.CommitAsync(CancellationToken.None);
            return row.ToResult();
        }, cancellationToken).AsTask();

    private static readonly EditResult NotMember = new(EditOutcome.NotMember, 0, default, 0);

    private static async Task<bool> LockForMemberAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, long conversationId, long userId, CancellationToken ct) =>
        await connection.ExecuteScalarAsync<int?>(new CommandDefinition(
            LockConversationForMemberSql, new { ConversationId = conversationId, UserId = userId }, transaction, cancellationToken: ct)) is not null;

    internal const string DeleteSql = $"""
        {TargetCtes}
        , changed AS (
            UPDATE conversations c SET last_change_seq = c.last_change_seq + 1, updated_at = now()
            FROM target t
            WHERE c.id = @ConversationId AND t.sender_id = @UserId AND NOT t.is_deleted AND EXISTS (SELECT 1 FROM member)
            RETURNING c.last_change_seq
        ), deleted AS (
            UPDATE messages m SET is_deleted = true, deleted_at = statement_timestamp(), change_seq = k.last_change_seq
            FROM target t, changed k
            WHERE m.id = t.id
            RETURNING m.id, m.seq, m.created_at, m.deleted_at, m.change_seq
        ), unread AS (
            -- Take the message back from the unread counts that include it, by the rules that made them: a member
            -- with a read position counts every later message from others (the read receipt recomputes it so);
            -- one without counts the messages stored since they joined (after joined_seq).
            UPDATE conversation_participants p SET unread_count = p.unread_count - 1, updated_at = now()
            FROM deleted d
            WHERE p.conversation_id = @ConversationId AND p.is_active AND p.user_id <> @UserId AND p.unread_count > 0
              AND CASE WHEN p.last_read_message_id IS NULL THEN p.joined_seq < d.seq
                       ELSE (SELECT r.seq FROM messages r WHERE r.id = p.last_read_message_id) < d.seq END
        )
        SELECT {OutcomeColumns}
                     WHEN (SELECT is_deleted FROM target) THEN 'AlreadyDeleted'
                     ELSE 'Done' END AS Outcome,
               COALESCE((SELECT seq FROM target), 0) AS Seq,
               COALESCE((SELECT deleted_at FROM deleted), (SELECT deleted_at FROM messages WHERE id = @MessageId), now()) AS At,
               COALESCE((SELECT change_seq FROM deleted), (SELECT change_seq FROM messages WHERE id = @MessageId AND conversation_id = @ConversationId AND is_deleted), 0) AS ChangeSeq,
               EXISTS (SELECT 1 FROM deleted d
                       WHERE NOT EXISTS (SELECT 1 FROM messages later
                                         WHERE later.conversation_id = @ConversationId AND later.seq > d.seq AND NOT later.is_deleted)) AS WasLatest,
               previous.content AS PreviousContent, previous.sender_id AS PreviousSenderId
        FROM (SELECT 1) AS one
        LEFT JOIN deleted d ON true
        LEFT JOIN LATERAL (
            SELECT m.content, m.sender_id FROM messages m
            WHERE m.conversation_id = @ConversationId AND m.seq < d.seq AND NOT m.is_deleted
              AND (SELECT later.seq FROM messages later
                   WHERE later.conversation_id = @ConversationId AND later.seq > d.seq AND NOT later.is_deleted
                   ORDER BY later.seq LIMIT 1) IS NULL
            ORDER BY m.seq DESC LIMIT 1
        ) previous ON true;
        """;

    // `previous` is looked for only when the deleted message was the latest visible one, from its seq down the
    // (conversation_id, seq) key. Joined to `deleted` as a plain table it was a backward walk from the
    // conversation's newest message with seq < d.seq as a filter, for every delete: deleting an old message, or a
    // repeated delete (nothing in `deleted`), read the whole history after it (HotConversationPlanTests).
    private const string SetPreviewSql = """
        UPDATE conversations SET last_message_preview = @Preview, last_message_sender_id = @SenderId, updated_at = now()
        WHERE id = @ConversationId
        """;

    /// <summary>
    /// Marks the user's own message deleted. When it was the latest visible message, the conversation preview
    /// becomes that of the message before it, made by <paramref name="previewOf"/>, and so does the preview's
    /// sender, in the same transaction.
    /// </summary>
    public Task<EditResult> DeleteAsync(long conversationId, long messageId, long userId, Func<string, string> previewOf, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            // Retrying is safe: a second attempt finds the message already deleted and changes nothing.
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            if (!await LockForMemberAsync(connection, transaction, conversationId, userId, ct))
            {
                return NotMember;
            }
            var row = await connection.QuerySingleAsync<EditRow>(new CommandDefinition(
                DeleteSql, new { ConversationId = conversationId, MessageId = messageId, UserId = userId }, transaction, cancellationToken: ct));
            if (row.WasLatest)
            {
                await connection.ExecuteAsync(new CommandDefinition(
                    SetPreviewSql,
                    new
                    {
                        ConversationId = conversationId,
                        Preview = row.PreviousContent is { } previous ? previewOf(previous) : null,
                        SenderId = row.PreviousSenderId,
                    },
                    transaction,
                    cancellationToken: ct));
            }
            await transaction.CommitAsync(CancellationToken.None);
            return row.ToResult();
        }, cancellationToken).AsTask();

    private sealed class EditRow
    {
        public required string Outcome { get; init; }
        public long Seq { get; init; }
        public DateTime At { get; init; }
        public long ChangeSeq { get; init; }
        public bool WasLatest { get; init; }
        public string? PreviousContent { get; init; }
        public long? PreviousSenderId { get; init; }

        public EditResult ToResult() => new(Enum.Parse<EditOutcome>(Outcome), Seq, At, ChangeSeq);
    }
}
