using Dapper;
using Npgsql;

namespace Chat.Data.Messages;

/// <param name="writer">Where batches are stored (<see cref="StoreBatchAsync"/>); the shared pool when null.</param>
public sealed class MessageRepository(NpgsqlDataSource dataSource, DatabaseResilience resilience, WriterDataSource? writer = null)
{
    /// <summary>Name of the unique constraint that makes the client message id an idempotency key per sender.</summary>
    public const string IdempotencyConstraint = "messages_sender_client_message_key";

    /// <summary>The foreign key that makes a reply point at an existing message.</summary>
    public const string ReplyConstraint = "messages_reply_to_message_id_fkey";

    // Three statements (two for a batch of one), one round trip, one implicit transaction, store a whole batch.
    //
    // The first takes the rows of the batch's conversations in ascending id order, so that two gateways writing
    // overlapping batches queue instead of deadlocking. Writers to one conversation queue on its row lock: seq
    // follows commit order, and a rolled-back batch gives its seqs back: no gaps.
    //
    // The second takes a transaction-scoped advisory lock per sender of the batch (class SenderLockClass, key a
    // hash of the sender's id), in ascending key order, after the conversations: two gateways' batches holding
    // messages of one sender queue here too. The idempotency key is unique per sender, not per conversation, so
    // without it two batches in different conversations could insert the same two keys in opposite orders and
    // deadlock on the key's index (a sender with a device on each of two gateways could do so at will, and each
    // deadlock stalled the losing gateway's writer for deadlock_timeout). A batch of one message leaves it out:
    // it inserts one key, so it waits for at most that key while holding no other, and cannot close a cycle. At
    // low rates most batches hold one message; there it would have cost a statement per message for nothing.
    //
    // The locks are statements of their own because under READ COMMITTED each statement sees what committed
    // before it began: the last begins once everything is held, so it sees whole a membership change that held
    // a conversation's row while the batch waited for it (adding and removing members lock that row first), by
    // the sender's membership test and by the unread counts, and every message that another batch holding the
    // same sender's lock stored. As one statement, a member added while the batch waited missed the batch's increment
    // (their count stayed one low for a message that catch-up showed them as unread), and a member removed while
    // it waited could still send.
    //
    // The last treats every item as if the items had been stored one after the other in queue order:
    // - `checked`: an item whose key the sender already used (`earlier`, read in the statement's snapshot) is a
    //   duplicate of that message; otherwise it must come from an active member and reply inside its conversation.
    //   Each of the three is a left join on a unique key, at most one row per item. The writer runs this statement
    //   with a generic plan (see WriterDataSource), and as EXISTS subqueries the membership test was planned as a
    //   hash of every participant's row, built anew for every batch.
    // - `winner`: the first valid copy of each (sender, key) in the batch is stored; a later copy is its duplicate,
    //   an earlier invalid copy keeps its own refusal.
    // - `bumped` adds the number of stored items to last_seq (read after the first statement took the row, so
    //   the latest committed value) and points the preview at the conversation's last item of the batch;
    //   `inserted` numbers the conversation's items seq_before + 1, + 2, ... in queue order.
    // - Ids are drawn while the conversation's row is locked and in seq order, so within a conversation a higher
    //   seq always has a higher id; the writer relies on that to publish in order (see MessageWriter).
    // - Messages are stamped with statement_timestamp(), when this statement began, that is after the rows were
    //   held: within a conversation a higher seq never has an earlier time. now(), the transaction's start, is
    //   before the wait, so a batch that waited for the row of one of its conversations while another gateway
    //   stored in another of them would have stamped its messages there earlier than that gateway's, with higher
    //   seqs.
    // - `unread` adds to every other active participant the number of stored items they did not send: the
    //   conversation's count less the participant's own, found in `counts.senders` (a subquery over `stored` per
    //   participant made batches of 200 take twice as long: the plan runs it as a nested loop).
    // - A writer that did not hold the sender's lock (another gateway's batch of one, a hand-written insert, a
    //   gateway of an older version) and commits the same key, or removes a replied-to message, after this statement's snapshot makes it fail on a
    //   constraint and roll back whole; StoreBatchAsync runs it again, and the new snapshot sees the twin (a
    //   duplicate) or the missing message (a bad reply).
    // For a duplicate of a message above @PublishedUpTo, which the caller has not published, the original's
    // fields are returned so that it can be published now (as it is now: edited, or not at all once deleted).
    private const string StoreBatchSql = LockConversationsSql + LockSendersSql + StoreSql;

    private const string StoreOneSql = LockConversationsSql + StoreSql;

    private const string LockConversationsSql = """
        SELECT id FROM conversations WHERE id = ANY(@ConversationIds) ORDER BY id FOR NO KEY UPDATE;

        """;

    private const string LockSendersSql = """
        SELECT pg_advisory_xact_lock(@SenderLockClass, k)
        FROM (SELECT DISTINCT hashint8(s) AS k FROM unnest(@SenderIds::bigint[]) AS s ORDER BY 1) AS senders;

        """;

    private const string StoreSql = """
        WITH input AS (
            SELECT *
            FROM unnest(@ConversationIds::bigint[], @SenderIds::bigint[], @ClientMessageIds::text[], @Contents::text[],
                        @MessageTypes::text[], @ReplyToMessageIds::bigint[], @MediaUrls::text[], @Previews::text[])
                 WITH ORDINALITY AS i(conversation_id, sender_id, client_message_id, content, message_type,
                                      reply_to_message_id, media_url, preview, ord)
        ), checked AS (
            SELECT i.ord, i.conversation_id, i.sender_id, i.client_message_id,
                   e.id AS earlier_id, e.conversation_id AS earlier_conversation_id, e.seq AS earlier_seq,
                   e.created_at AS earlier_created_at, e.id > @PublishedUpTo AND NOT e.is_deleted AS earlier_unpublished,
                   e.content AS earlier_content, e.message_type AS earlier_message_type,
                   e.reply_to_message_id AS earlier_reply_to_message_id, e.media_url AS earlier_media_url,
                   CASE WHEN e.is_edited THEN COALESCE(e.edited_at, e.created_at) END AS earlier_edited_at,
                   e.change_seq AS earlier_change_seq,
                   p.user_id IS NOT NULL AS member,
                   i.reply_to_message_id IS NULL OR r.id IS NOT NULL AS reply_ok
            FROM input i
            LEFT JOIN messages e ON e.sender_id = i.sender_id AND e.client_message_id = i.client_message_id
            LEFT JOIN conversation_participants p
                   ON p.conversation_id = i.conversation_id AND p.user_id = i.sender_id AND p.is_active
            LEFT JOIN messages r ON r.id = i.reply_to_message_id AND r.conversation_id = i.conversation_id
        ), winner AS (
            SELECT DISTINCT ON (sender_id, client_message_id) ord, sender_id, client_message_id
            FROM checked
            WHERE earlier_id IS NULL AND member AND reply_ok
            ORDER BY sender_id, client_message_id, ord
        ), stored AS (
            SELECT i.*, row_number() OVER (PARTITION BY i.conversation_id ORDER BY i.ord) AS rank
            FROM input i
            JOIN winner w ON w.ord = i.ord
        ), counts AS (
            SELECT conversation_id, count(*) AS n, array_agg(sender_id) AS senders,
                   (array_agg(preview ORDER BY ord DESC))[1] AS last_preview,
                   (array_agg(sender_id ORDER BY ord DESC))[1] AS last_sender_id
            FROM stored
            GROUP BY conversation_id
        ), bumped AS (
            UPDATE conversations c
            SET last_seq = c.last_seq + k.n,
                last_message_at = statement_timestamp(),
                last_message_preview = k.last_preview,
                last_message_sender_id = k.last_sender_id,
                updated_at = now()
            FROM counts k
            WHERE c.id = k.conversation_id
            RETURNING c.id, c.last_seq - k.n AS seq_before
        ), inserted AS (
            INSERT INTO messages (conversation_id, seq, sender_id, content, message_type,
                                  reply_to_message_id, media_url, client_message_id, created_at)
            SELECT s.conversation_id, b.seq_before + s.rank, s.sender_id, s.content, s.message_type,
                   s.reply_to_message_id, s.media_url, s.client_message_id, statement_timestamp()
            FROM stored s
            JOIN bumped b ON b.id = s.conversation_id
            ORDER BY s.ord
            RETURNING id, conversation_id, seq, created_at, sender_id, client_message_id
        ), increments AS (
            SELECT p.conversation_id, p.user_id,
                   k.n - cardinality(array_positions(k.senders, p.user_id)) AS n
            FROM counts k
            JOIN conversation_participants p ON p.conversation_id = k.conversation_id AND p.is_active
        ), unread AS (
            UPDATE conversation_participants p
            SET unread_count = p.unread_count + x.n
            FROM increments x
            JOIN bumped b ON b.id = x.conversation_id
            WHERE p.conversation_id = x.conversation_id AND p.user_id = x.user_id AND p.is_active AND x.n > 0
        )
        SELECT CASE WHEN c.earlier_id IS NOT NULL THEN 'Duplicate'
                    WHEN m.id IS NOT NULL AND w.ord = c.ord THEN 'Stored'
                    WHEN m.id IS NOT NULL AND w.ord < c.ord THEN 'Duplicate'
                    WHEN c.member AND NOT c.reply_ok THEN 'BadReply'
                    ELSE 'NotMember'
               END AS Outcome,
               COALESCE(c.earlier_id, CASE WHEN w.ord <= c.ord THEN m.id END, 0) AS Id,
               COALESCE(c.earlier_conversation_id, CASE WHEN w.ord <= c.ord THEN m.conversation_id END, c.conversation_id) AS ConversationId,
               COALESCE(c.earlier_seq, CASE WHEN w.ord <= c.ord THEN m.seq END, 0) AS Seq,
               COALESCE(c.earlier_created_at, CASE WHEN w.ord <= c.ord THEN m.created_at END, now()) AS CreatedAt,
               CASE WHEN c.earlier_unpublished THEN c.earlier_content END AS TwinContent,
               CASE WHEN c.earlier_unpublished THEN c.earlier_message_type END AS TwinMessageType,
               CASE WHEN c.earlier_unpublished THEN c.earlier_reply_to_message_id END AS TwinReplyToMessageId,
               CASE WHEN c.earlier_unpublished THEN c.earlier_media_url END AS TwinMediaUrl,
               CASE WHEN c.earlier_unpublished THEN c.earlier_edited_at END AS TwinEditedAt,
               CASE WHEN c.earlier_unpublished THEN c.earlier_change_seq END AS TwinChangeSeq
        FROM checked c
        LEFT JOIN winner w ON w.sender_id = c.sender_id AND w.client_message_id = c.client_message_id
        LEFT JOIN inserted m ON m.sender_id = c.sender_id AND m.client_message_id = c.client_message_id
        ORDER BY c.ord
        """;

    /// <summary>The first key of the batch's advisory locks per sender ("msgs"); the schema's own lock uses the one-key form.</summary>
    public const int SenderLockClass = 0x6D736773;

    // Each rerun's snapshot includes every commit that made an earlier run fail, so only a new race on every run
    // could exhaust this; the bound keeps a pathological case from looping.
    private const int MaxConstraintReruns = 4;

    private const string HighestMessageIdSql = "SELECT COALESCE(max(id), 0) FROM messages";

    /// <summary>The highest message id committed so far, 0 when there is none: the writer's starting mark (see MessageWriter).</summary>
    public Task<long> HighestMessageIdAsync(CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await (writer?.Source ?? dataSource).OpenConnectionAsync(ct);
            return await connection.ExecuteScalarAsync<long>(new CommandDefinition(HighestMessageIdSql, cancellationToken: ct));
        }, cancellationToken).AsTask();

    /// <summary>
    /// Stores a batch in one round trip and returns one result per message, in the batch's order. Returns only
    /// after COMMIT: an ack built from a result never names an uncommitted message. Within one conversation, the
    /// stored messages get consecutive seqs in the batch's order.
    /// </summary>
    /// <param name="publishedUpTo">
    /// The highest message id the caller has published, or <see cref="long.MaxValue"/> when it does not know one.
    /// A duplicate of a message above it carries that message's fields (<see cref="BatchItemResult.Twin"/>).
    /// </param>
    /// <remarks>
    /// Transient faults are retried through <see cref="DatabaseResilience"/>, even when the fault left the COMMIT
    /// of the failed attempt unknown. That is safe because every item carries its sender's idempotency key: if the
    /// failed attempt did commit, the rerun finds each item's twin and reports it as a duplicate with the original
    /// id, seq and time, and writes nothing (no second row, no seq taken, no unread count bumped twice). The twin's
    /// id is above <paramref name="publishedUpTo"/>, since it was drawn after every message the caller published,
    /// so the caller learns that the message was never published and can publish it (see MessageWriter).
    /// </remarks>
    public Task<IReadOnlyList<BatchItemResult>> StoreBatchAsync(IReadOnlyList<NewMessage> batch, long publishedUpTo, CancellationToken cancellationToken)
    {
        var conversationIds = new long[batch.Count];
        var senderIds = new long[batch.Count];
        var clientMessageIds = new string[batch.Count];
        var contents = new string[batch.Count];
        var messageTypes = new string[batch.Count];
        var replyToMessageIds = new long?[batch.Count];
        var mediaUrls = new string?[batch.Count];
        var previews = new string[batch.Count];
        for (var i = 0; i < batch.Count; i++)
        {
            (conversationIds[i], senderIds[i], clientMessageIds[i], contents[i], messageTypes[i], replyToMessageIds[i], mediaUrls[i], previews[i]) = batch[i];
        }

        return resilience.ExecuteAsync<IReadOnlyList<BatchItemResult>>(async ct =>
        {
            await using var connection = await (writer?.Source ?? dataSource).OpenConnectionAsync(ct);
            // Prepared rather than sent through Dapper: planning this statement costs more than running it for a
            // small batch. A pooled connection keeps the statement prepared, so this is a round trip only the
            // first time on each physical connection.
            var locksSenders = batch.Count > 1;
            await using var command = new NpgsqlCommand(locksSenders ? StoreBatchSql : StoreOneSql, connection)
            {
                Parameters =
                {
                    new NpgsqlParameter<long[]>("ConversationIds", conversationIds),
                    new NpgsqlParameter<long[]>("SenderIds", senderIds),
                    new NpgsqlParameter<string[]>("ClientMessageIds", clientMessageIds),
                    new NpgsqlParameter<string[]>("Contents", contents),
                    new NpgsqlParameter<string[]>("MessageTypes", messageTypes),
                    new NpgsqlParameter<long?[]>("ReplyToMessageIds", replyToMessageIds),
                    new NpgsqlParameter<string?[]>("MediaUrls", mediaUrls),
                    new NpgsqlParameter<string[]>("Previews", previews),
                    new NpgsqlParameter<long>("PublishedUpTo", publishedUpTo),
                },
            };
            if (locksSenders)
            {
                command.Parameters.Add(new NpgsqlParameter<int>("SenderLockClass", SenderLockClass));
            }
            await command.PrepareAsync(ct);
            for (var run = 1; ; run++)
            {
                try
                {
                    return await ReadBatchResultsAsync(command, batch.Count, lockStatements: locksSenders ? 2 : 1, ct);
                }
                catch (PostgresException e) when (run < MaxConstraintReruns && e is
                    { SqlState: PostgresErrorCodes.UniqueViolation, ConstraintName: IdempotencyConstraint } or
                    { SqlState: PostgresErrorCodes.ForeignKeyViolation, ConstraintName: ReplyConstraint })
                {
                    // Rolled back whole; the next run's snapshot includes the concurrent commit.
                }
            }
        }, cancellationToken).AsTask();
    }

    private static async Task<IReadOnlyList<BatchItemResult>> ReadBatchResultsAsync(NpgsqlCommand command, int count, int lockStatements, CancellationToken cancellationToken)
    {
        var results = new List<BatchItemResult>(count);
        // Disposing the reader reads on to the end of the implicit transaction, so a result is returned only after
        // COMMIT, and a commit that fails throws here.
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        // Past the locked conversations' ids and the senders' locks.
        for (var i = 0; i < lockStatements; i++)
        {
            await reader.NextResultAsync(cancellationToken);
        }
        while (await reader.ReadAsync(cancellationToken))
        {
            var result = new StoreResult(
                Enum.Parse<StoreOutcome>(reader.GetString(0)),
                reader.GetInt64(1),
                reader.GetInt64(2),
                reader.GetInt64(3),
                reader.GetDateTime(4));
            var twin = reader.IsDBNull(5)
                ? null
                : new MessageBody(reader.GetString(5), reader.GetString(6), reader.IsDBNull(7) ? null : reader.GetInt64(7), reader.IsDBNull(8) ? null : reader.GetString(8))
                {
                    EditedAt = reader.IsDBNull(9) ? null : reader.GetDateTime(9),
                    ChangeSeq = reader.IsDBNull(10) ? null : reader.GetInt64(10),
                };
            results.Add(new BatchItemResult(result, twin));
        }
        return results;
    }

    // How many messages each conversation's catch-up can hold at most, from positions alone (deleted messages and
    // the cap make the real number smaller): enough to read the replay a few conversations at a time.
    private const string CatchupSizesSql = """
        SELECT p.conversation_id AS ConversationId,
               LEAST(GREATEST(c.last_seq - COALESCE(r.seq, p.joined_seq), 0), @Limit + 1) AS Messages
        FROM conversation_participants p
        JOIN conversations c ON c.id = p.conversation_id
        LEFT JOIN messages r ON r.id = p.last_read_message_id
        WHERE p.user_id = @UserId AND p.is_active AND p.conversation_id = ANY(@ConversationIds)
        ORDER BY p.conversation_id;
        """;

    /// <summary>
    /// The conversations of a catch-up in groups, in ascending id order, each of which reads at most about
    /// <paramref name="budget"/> messages (a conversation with more is a group of its own): a user in thousands of
    /// conversations would otherwise have up to <paramref name="limitPerConversation"/> + 1 messages of each read into
    /// memory at once, for as long as the client takes to read them.
    /// </summary>
    public Task<IReadOnlyList<long[]>> CatchupGroupsAsync(long userId, IReadOnlyCollection<long> conversationIds, int limitPerConversation, int budget, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync<IReadOnlyList<long[]>>(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            var sizes = await connection.QueryAsync<(long ConversationId, long Messages)>(new CommandDefinition(
                CatchupSizesSql,
                new { UserId = userId, ConversationIds = conversationIds.ToArray(), Limit = limitPerConversation },
                cancellationToken: ct));
            var groups = new List<long[]>();
            var group = new List<long>();
            long held = 0;
            foreach (var (conversationId, messages) in sizes)
            {
                if (group.Count > 0 && held + messages > budget)
                {
                    groups.Add([.. group]);
                    (group, held) = ([], 0);
                }
                group.Add(conversationId);
                held += messages;
            }
            if (group.Count > 0)
            {
                groups.Add([.. group]);
            }
            return groups;
        }, cancellationToken).AsTask();

    // Per active conversation: the messages after the read position or, for a participant who never read, after
    // the last seq when they joined (joined_seq); at most @Limit + 1 each, the extra one only to tell whether more
    // remain. Either way one range of the (conversation_id, seq) key, however long the history before it.
    // The second result set is read in the same snapshot, so lastSeq matches the messages returned.
    private const string CatchupSql = """
        SELECT m.id AS MessageId, m.conversation_id AS ConversationId, m.seq AS Seq, m.sender_id AS SenderId,
               u.display_name AS SenderName, u.avatar_url AS SenderAvatarUrl, m.content AS Content,
               m.message_type AS MessageType, m.reply_to_message_id AS ReplyToMessageId, m.media_url AS MediaUrl,
               m.client_message_id AS ClientMessageId, m.created_at AS CreatedAt,
               CASE WHEN m.is_edited THEN COALESCE(m.edited_at, m.created_at) END AS EditedAt,
               m.change_seq AS ChangeSeq
        FROM conversation_participants p
        LEFT JOIN messages r ON r.id = p.last_read_message_id
        CROSS JOIN LATERAL (
            SELECT * FROM messages m
            WHERE m.conversation_id = p.conversation_id
              AND m.seq > COALESCE(r.seq, p.joined_seq)
              AND NOT m.is_deleted
            ORDER BY m.seq
            LIMIT @Limit + 1
        ) m
        JOIN user_profiles u ON u.id = m.sender_id
        WHERE p.user_id = @UserId AND p.is_active AND p.conversation_id = ANY(@ConversationIds)
        ORDER BY m.conversation_id, m.seq;

        SELECT c.id AS ConversationId, c.last_seq AS LastSeq, p.unread_count AS UnreadCount, c.last_change_seq AS LastChangeSeq
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
}
