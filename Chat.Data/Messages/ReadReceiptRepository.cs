using Dapper;
using Npgsql;

namespace Chat.Data.Messages;

public enum ReadOutcome
{
    /// <summary>The read position moved forward to the message.</summary>
    Moved,
    /// <summary>The participant had already read this message or a later one: nothing changed.</summary>
    AlreadyRead,
    NotMember,
    /// <summary>No such message in this conversation.</summary>
    MessageNotFound,
}

public sealed record ReadResult(ReadOutcome Outcome, int UnreadCount, DateTime ReadAt);

public sealed class ReadReceiptRepository(NpgsqlDataSource dataSource, DatabaseResilience resilience)
{
    // Three statements, one round trip, one implicit transaction; each later one takes a fresh snapshot.
    // The first waits for message inserts in flight in this conversation (they hold its row lock) so that the
    // last counts them: an unread count computed beside a concurrent insert would otherwise lose that insert's
    // increment.
    // The second locks the reader's row, so that two reads of one user (two devices) run one after the other and
    // the last statement reads the position the other left. Without it both read the old position in their
    // snapshots, the one that waited for the row lock updated it all the same (a lock wait re-checks the WHERE
    // against the new row version, but `me` is not that row), and a read of seq 5 just after one of seq 10
    // moved the position back to 5. The conversation's row is always locked before a participant's, as the
    // message writer and edits do.
    // The last moves the read position forward only, sets the unread count to the number of later messages
    // from others, and marks every newly covered message read in one INSERT ... ON CONFLICT (not a tombstone: it
    // has nothing left to read). A member who has read nothing since joining stands at joined_seq, as catch-up
    // and the writer's unread counts have it: the messages from before they joined (or rejoined) are not theirs
    // to read, and a receipt for one of them would otherwise move them back and count the messages sent while
    // they were away as unread.
    private const string MarkReadSql = """
        SELECT 1 FROM conversations WHERE id = @ConversationId FOR SHARE;

        SELECT 1 FROM conversation_participants WHERE conversation_id = @ConversationId AND user_id = @UserId FOR NO KEY UPDATE;

        WITH target AS (
            SELECT id, seq FROM messages WHERE id = @MessageId AND conversation_id = @ConversationId
        ), me AS (
            SELECT COALESCE(r.seq, p.joined_seq) AS read_seq
            FROM conversation_participants p
            LEFT JOIN messages r ON r.id = p.last_read_message_id
            WHERE p.conversation_id = @ConversationId AND p.user_id = @UserId AND p.is_active
        ), moved AS (
            UPDATE conversation_participants p
            SET last_read_message_id = target.id,
                last_read_at = now(),
                updated_at = now(),
                unread_count = (
                    SELECT count(*) FROM messages m
                    WHERE m.conversation_id = @ConversationId AND m.seq > target.seq
                      AND m.sender_id <> @UserId AND NOT m.is_deleted)
            FROM target, me
            WHERE p.conversation_id = @ConversationId AND p.user_id = @UserId AND target.seq > me.read_seq
            RETURNING p.unread_count, me.read_seq AS from_seq, target.seq AS to_seq
        ), statuses AS (
            INSERT INTO message_status (message_id, user_id, delivered_at, read_at)
            SELECT m.id, @UserId, now(), now()
            FROM messages m, moved
            WHERE m.conversation_id = @ConversationId AND m.seq > moved.from_seq AND m.seq <= moved.to_seq
              AND m.sender_id <> @UserId AND NOT m.is_deleted
            ON CONFLICT (message_id, user_id) DO UPDATE
                SET read_at = COALESCE(message_status.read_at, EXCLUDED.read_at),
                    delivered_at = COALESCE(message_status.delivered_at, EXCLUDED.delivered_at)
        )
        SELECT CASE
                   WHEN NOT EXISTS (SELECT 1 FROM me) THEN 'NotMember'
                   WHEN NOT EXISTS (SELECT 1 FROM target) THEN 'MessageNotFound'
                   WHEN EXISTS (SELECT 1 FROM moved) THEN 'Moved'
                   ELSE 'AlreadyRead'
               END AS Outcome,
               COALESCE((SELECT unread_count FROM moved),
                        (SELECT unread_count FROM conversation_participants
                         WHERE conversation_id = @ConversationId AND user_id = @UserId), 0) AS UnreadCount,
               now() AS ReadAt;
        """;

    public Task<ReadResult> MarkReadAsync(long conversationId, long userId, long messageId, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            using var results = await connection.QueryMultipleAsync(new CommandDefinition(
                MarkReadSql, new { ConversationId = conversationId, UserId = userId, MessageId = messageId }, cancellationToken: ct));
            await results.ReadAsync<int>();
            await results.ReadAsync<int>();
            var row = await results.ReadSingleAsync<ReadRow>();
            return new ReadResult(Enum.Parse<ReadOutcome>(row.Outcome), row.UnreadCount, row.ReadAt);
        }, cancellationToken).AsTask();

    private sealed class ReadRow
    {
        public required string Outcome { get; init; }
        public int UnreadCount { get; init; }
        public DateTime ReadAt { get; init; }
    }
}
