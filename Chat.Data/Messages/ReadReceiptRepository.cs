using Dapper;
using Npgsql;

namespace Chat.Data.Messages;

public enum ReadOutcome
{
    /// <summary>
    /// The read position moved forward to the message: in this attempt, or in an earlier attempt of the same call
    /// whose COMMIT took effect though its answer was lost.
    /// </summary>
    Moved,
    /// <summary>The participant had already read this message or a later one: nothing changed.</summary>
    AlreadyRead,
    NotMember,
    /// <summary>No such message in this conversation.</summary>
    MessageNotFound,
}

/// <param name="UnreadCount">
/// The reader's unread count after the receipt: when it moved the position, the one the same statement stored, which
/// is what their other devices are told and what their next <c>ready</c> says unless messages come or go meanwhile.
/// </param>
/// <param name="Seq">The seq of the message read (0 when it is not in the conversation).</param>
/// <param name="LastSeq">The conversation's last seq when the count was taken: the count covers the messages up to it.</param>
/// <param name="LastChangeSeq">The conversation's last change position when the count was taken: the deletions up to it are counted out.</param>
public sealed record ReadResult(ReadOutcome Outcome, long Seq, int UnreadCount, long LastSeq, long LastChangeSeq, DateTime ReadAt);

public sealed class ReadReceiptRepository(NpgsqlDataSource dataSource, DatabaseResilience resilience)
{
    // Four statements, one round trip, in a transaction committed by a COMMIT of its own; each later statement takes
    // a fresh snapshot. Committed implicitly, at the end of the batch, a receipt was stored before its results
    // were read, and a cancellation (the frame's deadline) that came while they were could make the caller see a failure
    // for a receipt the database held: never announced, and a retry then finds it already read and says nothing.
    // The batch is cancellable (its transaction then rolls back); the COMMIT is not.
    // The first marks the messages the receipt covers read (one INSERT ... ON CONFLICT; not tombstones: they have
    // nothing left to read), before any lock of the conversation is taken: a first receipt after a long absence
    // covers thousands of messages, and while the conversation's row was held for them the message writer, which
    // stores every conversation's messages in one batch at a time, waited with it (1.5 s for 46,000 rows). The range
    // runs from the read position as this statement sees it, which is at or before the one the last statement
    // moves from, so it covers every message that statement marks read; a receipt that turns out to move nothing
    // (another device read further first) marks only messages already read, and keeps their first read time. Rows
    // are written in seq order, so two devices of one user inserting overlapping ranges wait for each other instead
    // of deadlocking, and the status rows are always taken before the rows below.
    // The second waits for message inserts in flight in this conversation (they hold its row lock) so that the
    // last counts them: an unread count computed beside a concurrent insert would otherwise lose that insert's
    // increment.
    // The third locks the reader's row, so that two reads of one user (two devices) run one after the other and
    // the last statement reads the position the other left. Without it both read the old position in their
    // snapshots, the one that waited for the row lock updated it all the same (a lock wait re-checks the WHERE
    // against the new row version, but `me` is not that row), and a read of seq 5 just after one of seq 10
    // moved the position back to 5. The conversation's row is always locked before a participant's, as the
    // message writer and edits do.
    // The last moves the read position forward only and sets the unread count to the number of later messages
    // from others. A member who has read nothing since joining stands at joined_seq, as catch-up and the writer's
    // unread counts have it: the messages from before they joined (or rejoined) are not theirs to read, and a
    // receipt for one of them would otherwise move them back and count the messages sent while they were away as
    // unread. It also reads the conversation's last seq and change position in the same snapshot, after the
    // conversation's lock: the count covers exactly the messages and deletions up to them, and the reader's other
    // devices, told all three, can tell which of the frames that reach them around this one the count includes.
    // The move is stamped with the call's request id (@Request, the same in every attempt). An attempt retried after
    // the connection broke right after the COMMIT finds the position already at the message; when the stamp there
    // is its own, the move is that earlier attempt's, and it is reported as made, so that it is announced as if
    // that attempt had been answered. The count is then the one stored now, which the writer and deletions have
    // kept up to date since, so it is exact for the last seq and change position read beside it, as a fresh move's
    // is. A position another receipt moved since (the stamp is not ours), or one that left and came back (the
    // position is gone), is not this request's: that reads as already read, as before.
    private const string MarkReadSql = """
        INSERT INTO message_status (message_id, user_id, delivered_at, read_at)
        SELECT m.id, @UserId, now(), now()
        FROM conversation_participants p
        LEFT JOIN messages r ON r.id = p.last_read_message_id
        JOIN messages target ON target.id = @MessageId AND target.conversation_id = @ConversationId
        JOIN messages m ON m.conversation_id = @ConversationId
                       AND m.seq > COALESCE(r.seq, p.joined_seq) AND m.seq <= target.seq
        WHERE p.conversation_id = @ConversationId AND p.user_id = @UserId AND p.is_active
          AND m.sender_id <> @UserId AND NOT m.is_deleted
        ORDER BY m.seq
        ON CONFLICT (message_id, user_id) DO UPDATE
            SET read_at = COALESCE(message_status.read_at, EXCLUDED.read_at),
                delivered_at = COALESCE(message_status.delivered_at, EXCLUDED.delivered_at);

        SELECT 1 FROM conversations WHERE id = @ConversationId FOR SHARE;

        SELECT 1 FROM conversation_participants WHERE conversation_id = @ConversationId AND user_id = @UserId FOR NO KEY UPDATE;

        WITH target AS (
            SELECT id, seq FROM messages WHERE id = @MessageId AND conversation_id = @ConversationId
        ), me AS (
            SELECT COALESCE(r.seq, p.joined_seq) AS read_seq,
                   (p.last_read_message_id = @MessageId AND p.read_request = @Request) IS TRUE AS ours,
                   p.last_read_at
            FROM conversation_participants p
            LEFT JOIN messages r ON r.id = p.last_read_message_id
            WHERE p.conversation_id = @ConversationId AND p.user_id = @UserId AND p.is_active
        ), moved AS (
            UPDATE conversation_participants p
            SET last_read_message_id = target.id,
                last_read_at = now(),
                updated_at = now(),
                read_request = @Request,
                unread_count = (
                    SELECT count(*) FROM messages m
                    WHERE m.conversation_id = @ConversationId AND m.seq > target.seq
                      AND m.sender_id <> @UserId AND NOT m.is_deleted)
            FROM target, me
            WHERE p.conversation_id = @ConversationId AND p.user_id = @UserId AND target.seq > me.read_seq
            RETURNING p.unread_count
        )
        SELECT CASE
                   WHEN NOT EXISTS (SELECT 1 FROM me) THEN 'NotMember'
                   WHEN NOT EXISTS (SELECT 1 FROM target) THEN 'MessageNotFound'
                   WHEN EXISTS (SELECT 1 FROM moved) OR (SELECT ours FROM me) THEN 'Moved'
                   ELSE 'AlreadyRead'
               END AS Outcome,
               COALESCE((SELECT unread_count FROM moved),
                        (SELECT unread_count FROM conversation_participants
                         WHERE conversation_id = @ConversationId AND user_id = @UserId), 0) AS UnreadCount,
               COALESCE((SELECT seq FROM target), 0) AS Seq,
               c.last_seq AS LastSeq, c.last_change_seq AS LastChangeSeq,
               COALESCE((SELECT last_read_at FROM me WHERE ours), now()) AS ReadAt
        FROM (SELECT 1) AS one
        LEFT JOIN conversations c ON c.id = @ConversationId;
        """;

    public Task<ReadResult> MarkReadAsync(long conversationId, long userId, long messageId, CancellationToken cancellationToken)
    {
        var request = Guid.NewGuid();
        return resilience.ExecuteAsync(async ct =>
        {
            // Retrying is safe: a receipt at or before the position changes nothing, and the request's own move, made
            // by an attempt whose COMMIT's answer was lost, is recognised as such.
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            await using var transaction = await connection.BeginTransactionAsync(ct);
            ReadRow row;
            using (var results = await connection.QueryMultipleAsync(new CommandDefinition(
                MarkReadSql, new { ConversationId = conversationId, UserId = userId, MessageId = messageId, Request = request }, transaction, cancellationToken: ct)))
            {
                await results.ReadAsync<int>();
                await results.ReadAsync<int>();
                row = await results.ReadSingleAsync<ReadRow>();
            }
            await transaction.CommitAsync(CancellationToken.None);
            return new ReadResult(Enum.Parse<ReadOutcome>(row.Outcome), row.Seq, row.UnreadCount, row.LastSeq, row.LastChangeSeq, row.ReadAt);
        }, cancellationToken).AsTask();
    }

    private sealed class ReadRow
    {
        public required string Outcome { get; init; }
        public long Seq { get; init; }
        public int UnreadCount { get; init; }
        public long LastSeq { get; init; }
        public long LastChangeSeq { get; init; }
        public DateTime ReadAt { get; init; }
    }
}
