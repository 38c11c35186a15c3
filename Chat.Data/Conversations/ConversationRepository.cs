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

    // Two statements, one transaction (implicit, unless the answer is read in it too). The first locks an existing
    // direct conversation's row (FOR SHARE waits for a batch storing messages there and holds the next one off), so
    // that the second, whose snapshot and statement_timestamp() come after the wait, reads last_seq as committed and
    // stamps the return after the messages stored before it, as adding a member does (AddMemberSql). As one
    // statement, joined_at and the `member` frame's time were the statement's start, before the wait: a message
    // stored while it waited, which joined_seq rightly puts before the return, carried a later time than the return.
    // The second creates the conversation and its participants. A direct conversation is keyed by its two members:
    // when it exists already, it is returned (and members who had left it are back), not created twice. When a
    // concurrent request created it after this statement's snapshot, ON CONFLICT skips the insert and `existing`
    // cannot see the row yet: no row comes back and the caller runs the statements again.
    private const string CreateSql = """
        SELECT 1 FROM conversations WHERE direct_key = @DirectKey FOR SHARE;

        WITH created AS (
            -- Stamped with the members' joined_at: a new conversation's member frames carry its creation time.
            INSERT INTO conversations (title, is_group, direct_key, created_at) VALUES (@Title, @IsGroup, @DirectKey, statement_timestamp())
            ON CONFLICT (direct_key) DO NOTHING
            RETURNING id
        ), existing AS (
            -- FOR SHARE also covers a conversation that a concurrent request created after the first statement.
            SELECT id, last_seq FROM conversations
            WHERE direct_key = @DirectKey AND NOT EXISTS (SELECT 1 FROM created)
            FOR SHARE
        ), target AS (
            SELECT id, true AS created, 0::bigint AS last_seq FROM created
            UNION ALL
            SELECT id, false, last_seq FROM existing
        ), members AS (
            INSERT INTO conversation_participants (conversation_id, user_id, joined_seq, joined_at)
            SELECT target.id, member.id, target.last_seq, statement_timestamp() FROM target, unnest(@MemberIds) AS member(id)
            ON CONFLICT (conversation_id, user_id) DO UPDATE
                SET is_active = true, unread_count = 0, last_read_message_id = NULL, last_read_at = NULL,
                    joined_at = statement_timestamp(), joined_seq = EXCLUDED.joined_seq, updated_at = now()
                WHERE NOT conversation_participants.is_active
            RETURNING user_id
        )
        SELECT id AS ConversationId, created AS Created,
               ARRAY(SELECT user_id FROM members ORDER BY user_id) AS JoinedUserIds,
               statement_timestamp() AS JoinedAt, last_seq AS JoinedSeq
        FROM target
        """;

    // A group created with a creation key (the caller's Idempotency-Key, made unique per user): the key's
    // conversation when it exists, created otherwise. A concurrent request with the same key that inserted first
    // makes ON CONFLICT wait for its commit and skip the insert, and this statement's snapshot cannot see its row:
    // no row comes back and the caller runs the statement again, as for a direct conversation.
    private const string CreateKeyedGroupSql = """
        WITH created AS (
            INSERT INTO conversations (title, is_group, creation_key, creation_request, created_at)
            VALUES (@Title, true, @CreationKey, @CreationRequest, statement_timestamp())
            ON CONFLICT (creation_key) WHERE creation_key IS NOT NULL DO NOTHING
            RETURNING id
        ), members AS (
            INSERT INTO conversation_participants (conversation_id, user_id, joined_seq, joined_at)
            SELECT created.id, member.id, 0, statement_timestamp() FROM created, unnest(@MemberIds) AS member(id)
            RETURNING user_id
        )
        SELECT id AS ConversationId, true AS Created, ARRAY(SELECT user_id FROM members ORDER BY user_id) AS JoinedUserIds,
               statement_timestamp() AS JoinedAt, 0::bigint AS JoinedSeq, true AS SameRequest
        FROM created
        UNION ALL
        SELECT id, false, '{}'::bigint[], statement_timestamp(), 0::bigint, creation_request = @CreationRequest
        FROM conversations
        WHERE creation_key = @CreationKey AND NOT EXISTS (SELECT 1 FROM created)
        """;

    /// <summary>
    /// Creates a conversation whose members are the given user ids, or for a direct conversation returns the
    /// existing one. Not retried on faults: creating a group is not idempotent.
    /// </summary>
    /// <param name="directKey">For a direct conversation, <see cref="DirectKey"/> of its two members; null for a group.</param>
    public Task<CreatedConversation> CreateAsync(string? title, bool isGroup, string? directKey, IReadOnlyCollection<long> memberIds, CancellationToken cancellationToken) =>
        CreateAsync(title, isGroup, directKey, memberIds, readAs: null, creation: null, cancellationToken);

    /// <summary>
    /// As <see cref="CreateAsync(string?, bool, string?, IReadOnlyCollection{long}, CancellationToken)"/>, and reads
    /// into <see cref="CreatedConversation.Conversation"/> the conversation as <paramref name="readAs"/>, one of its
    /// members, sees it, in the creation's own transaction. A group with a <paramref name="creation"/> key is created
    /// once per key: asked again, the key's conversation is returned (<see cref="CreatedConversation.Created"/>
    /// false), read for <paramref name="readAs"/> when the request's fingerprint is the one it was created with and
    /// they are still a member.
    /// </summary>
    /// <remarks>
    /// Read in the transaction, the answer is the conversation as the creation left it: read after the commit, it
    /// was gone when the member left it in between (another request of theirs, or another member removing them
    /// from a new group), and a read that failed after the commit answered a committed creation as failed. Either
    /// would have a client create the group again.
    /// </remarks>
    /// <param name="creation">The key, unique across users (see <see cref="CreationKey"/>), and the request's fingerprint.</param>
    public async Task<CreatedConversation> CreateAsync(
        string? title, bool isGroup, string? directKey, IReadOnlyCollection<long> memberIds, long? readAs,
        (string Key, string Request)? creation, CancellationToken cancellationToken)
    {
        if (creation is not null && (!isGroup || directKey is not null))
        {
            throw new ArgumentException("A creation key is for groups: a direct conversation is keyed by its two members.", nameof(creation));
        }
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        // Npgsql runs every command of a connection in the transaction open on it, so the statements below, the
        // answer's read included, are in this one without naming it.
        await using var transaction = readAs is null ? null : await connection.BeginTransactionAsync(cancellationToken);
        // Members in id order: two requests for the same direct conversation (Alice's lists Alice first, Bob's
        // Bob first) then lock its participant rows in the same order instead of deadlocking.
        var parameters = new
        {
            Title = title, IsGroup = isGroup, DirectKey = directKey, MemberIds = memberIds.Distinct().Order().ToArray(),
            CreationKey = creation?.Key, CreationRequest = creation?.Request,
        };
        while (true)
        {
            CreatedConversation? row;
            using (var results = await connection.QueryMultipleAsync(new CommandDefinition(creation is null ? CreateSql : CreateKeyedGroupSql, parameters, cancellationToken: cancellationToken)))
            {
                if (creation is null)
                {
                    await results.ReadAsync<int>();
                }
                row = await results.ReadSingleOrDefaultAsync<CreatedConversation>();
            }
            if (row is null)
            {
                continue;
            }
            if (readAs is { } reader)
            {
                if (row.SameRequest)
                {
                    // A key's conversation that the reader has left reads as null; a creation's always has them.
                    row.Conversation = await ReadAsync(connection, row.ConversationId, reader, cancellationToken);
                    if (row.Conversation is null && row.Created)
                    {
                        throw new ArgumentException($"User {reader} is not among the conversation's members.", nameof(readAs));
                    }
                }
                await transaction!.CommitAsync(cancellationToken);
            }
            return row;
        }
    }

    /// <summary>A caller's creation key, unique across users: the same key from two users names two conversations.</summary>
    public static string CreationKey(long userId, string idempotencyKey) => $"{userId}:{idempotencyKey}";

    // The direct conversation of the key, when there is one that one of its two people has left: creating it again
    // brings them back, a membership change (see ConversationService.CreateAsync).
    private const string DirectConversationToReopenSql = """
        SELECT c.id FROM conversations c
        WHERE c.direct_key = @DirectKey
          AND EXISTS (SELECT 1 FROM conversation_participants p WHERE p.conversation_id = c.id AND NOT p.is_active)
        """;

    /// <summary>The direct conversation with this <see cref="DirectKey"/> when it exists and one of its two people has left it.</summary>
    public Task<long?> DirectConversationToReopenAsync(string directKey, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            return await connection.ExecuteScalarAsync<long?>(new CommandDefinition(DirectConversationToReopenSql, new { DirectKey = directKey }, cancellationToken: ct));
        }, cancellationToken).AsTask();

    public static string DirectKey(long userA, long userB) => $"{Math.Min(userA, userB)}:{Math.Max(userA, userB)}";

    private const string SummaryColumns = """
        c.id AS ConversationId, c.title AS Title, c.is_group AS IsGroup, c.created_at AS CreatedAt,
        c.last_seq AS LastSeq, c.last_message_at AS LastMessageAt, c.last_message_preview AS LastMessagePreview,
        c.last_message_sender_id AS LastMessageSenderId,
        (SELECT s.display_name FROM user_profiles s WHERE s.id = c.last_message_sender_id) AS LastMessageSenderName,
        p.unread_count AS UnreadCount, COALESCE(c.last_message_at, c.created_at) AS ActivityAt,
        (SELECT count(*) FROM conversation_participants m WHERE m.conversation_id = c.id AND m.is_active)::int AS MemberCount
        """;

    // Keyset pagination on (activity, id), both descending: stable pages however many conversations a user has.
    private const string ListSql = $"""
        SELECT {SummaryColumns}
        FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id
        WHERE p.user_id = @UserId AND p.is_active
          AND (@AfterActivity::timestamptz IS NULL
               OR (COALESCE(c.last_message_at, c.created_at), c.id) < (@AfterActivity, @AfterId))
        ORDER BY COALESCE(c.last_message_at, c.created_at) DESC, c.id DESC
        LIMIT @Limit + 1
        """;

    private const string GetSql = $"""
        SELECT {SummaryColumns}
        FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id
        WHERE p.user_id = @UserId AND p.is_active AND c.id = @ConversationId
        """;

    // The first @PerConversation active members of each conversation, by user id, read along the primary key.
    private const string MembersSql = """
        SELECT c.id AS ConversationId, m.UserId, m.ExternalId, m.DisplayName, m.AvatarUrl, m.LastSeenAt
        FROM unnest(@ConversationIds) AS c(id)
        CROSS JOIN LATERAL (
            SELECT u.id AS UserId, u.external_id AS ExternalId, u.display_name AS DisplayName,
                   u.avatar_url AS AvatarUrl, u.last_seen_at AS LastSeenAt
            FROM conversation_participants p JOIN user_profiles u ON u.id = p.user_id
            WHERE p.conversation_id = c.id AND p.is_active
            ORDER BY p.user_id
            LIMIT @PerConversation
        ) m
        ORDER BY c.id, m.UserId
        """;

    /// <summary>
    /// Members a conversation of the list carries: enough for a client to show a direct conversation's other person
    /// and a group's first faces. A page of 100 groups of 1,000 members each would otherwise be about 10 MB.
    /// </summary>
    public const int ListedMembersPerConversation = 10;

    /// <summary>
    /// A page of the user's active conversations, newest activity first, after the cursor position
    /// (<paramref name="after"/>: the activity time and id of the last conversation of the previous page).
    /// </summary>
    public Task<ConversationPage> ListAsync(long userId, (DateTime ActivityAt, long Id)? after, int limit, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            var rows = (await connection.QueryAsync<ConversationSummary>(new CommandDefinition(
                ListSql,
                new { UserId = userId, AfterActivity = after?.ActivityAt, AfterId = after?.Id ?? 0, Limit = limit },
                cancellationToken: ct))).AsList();
            var hasMore = rows.Count > limit;
            if (hasMore)
            {
                rows.RemoveAt(rows.Count - 1);
            }
            await AttachMembersAsync(connection, rows, ListedMembersPerConversation, ct);
            return new ConversationPage(rows, hasMore);
        }, cancellationToken).AsTask();

    /// <summary>The conversation as the user sees it, or null when they are not an active member (or it does not exist).</summary>
    public Task<ConversationSummary?> GetAsync(long conversationId, long userId, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            return await ReadAsync(connection, conversationId, userId, ct);
        }, cancellationToken).AsTask();

    private static async Task<ConversationSummary?> ReadAsync(NpgsqlConnection connection, long conversationId, long userId, CancellationToken ct)
    {
        var row = await connection.QuerySingleOrDefaultAsync<ConversationSummary>(new CommandDefinition(
            GetSql, new { UserId = userId, ConversationId = conversationId }, cancellationToken: ct));
        if (row is not null)
        {
            await AttachMembersAsync(connection, [row], int.MaxValue, ct);
        }
        return row;
    }

    private const string IsGroupForMemberSql = """
        SELECT c.is_group
        FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id
        WHERE p.conversation_id = @ConversationId AND p.user_id = @UserId AND p.is_active
        """;

    /// <summary>
    /// Whether the conversation is a group, as one of its active members may ask; null for anyone else or a conversation
    /// that does not exist. The check before a membership change, without the member list that <see cref="GetAsync"/> reads.
    /// </summary>
    public Task<bool?> IsGroupForMemberAsync(long conversationId, long userId, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            return await connection.QuerySingleOrDefaultAsync<bool?>(new CommandDefinition(
                IsGroupForMemberSql, new { ConversationId = conversationId, UserId = userId }, cancellationToken: ct));
        }, cancellationToken).AsTask();

    private static async Task AttachMembersAsync(NpgsqlConnection connection, IReadOnlyList<ConversationSummary> conversations, int perConversation, CancellationToken ct)
    {
        if (conversations.Count == 0)
        {
            return;
        }
        var members = await connection.QueryAsync<ConversationMember>(new CommandDefinition(
            MembersSql, new { ConversationIds = conversations.Select(c => c.ConversationId).ToArray(), PerConversation = perConversation }, cancellationToken: ct));
        var byConversation = members.ToLookup(m => m.ConversationId);
        foreach (var conversation in conversations)
        {
            conversation.Members = [.. byConversation[conversation.ConversationId]];
        }
    }

    // The actor must be an active member of a group. A member who left and comes back starts afresh: unread 0 and
    // no read position, so catch-up starts at their return (joined_seq, the conversation's last seq then).
    // The first statement locks the conversation's row: it waits for a batch storing messages there and for
    // another add, and holds both off until this commits. The second, with a snapshot taken after the lock,
    // then reads last_seq and the member count as committed: concurrent adds cannot pass @MaxMembers, and the
    // batches after this one, including one that waited for the row meanwhile, see the new member and count
    // their messages as unread (see MessageRepository.StoreBatchSql).
    // The change is stamped with the request (@Request, the same in every attempt): an attempt that finds the
    // member already added by an earlier attempt of its own, whose commit's answer the connection lost, reports
    // that change as made, so that the other members are told of it.
    private const string AddMemberSql = """
        SELECT 1 FROM conversations WHERE id = @ConversationId FOR UPDATE;

        WITH actor AS (
            SELECT c.is_group, c.last_seq,
                   (SELECT count(*) FROM conversation_participants m WHERE m.conversation_id = c.id AND m.is_active) AS members
            FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id
            WHERE p.conversation_id = @ConversationId AND p.user_id = @ActorId AND p.is_active
        ), already AS (
            SELECT joined_at, joined_seq, membership_request = @Request AS ours
            FROM conversation_participants WHERE conversation_id = @ConversationId AND user_id = @UserId AND is_active
        ), added AS (
            INSERT INTO conversation_participants (conversation_id, user_id, joined_seq, joined_at, membership_request)
            SELECT @ConversationId, @UserId, actor.last_seq, statement_timestamp(), @Request FROM actor
            WHERE actor.is_group AND actor.members < @MaxMembers AND NOT EXISTS (SELECT 1 FROM already)
            ON CONFLICT (conversation_id, user_id) DO UPDATE
                SET is_active = true, unread_count = 0, last_read_message_id = NULL, last_read_at = NULL,
                    joined_at = statement_timestamp(), joined_seq = EXCLUDED.joined_seq, updated_at = now(),
                    membership_request = EXCLUDED.membership_request
                WHERE NOT conversation_participants.is_active
            RETURNING joined_at, joined_seq
        ), made AS (
            SELECT joined_at, joined_seq FROM added
            UNION ALL
            SELECT joined_at, joined_seq FROM already WHERE ours
        )
        SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM actor) THEN 'NotFound'
                    WHEN NOT (SELECT is_group FROM actor) THEN 'NotGroup'
                    WHEN EXISTS (SELECT 1 FROM made) THEN 'Changed'
                    WHEN EXISTS (SELECT 1 FROM already) THEN 'Unchanged'
                    ELSE 'Full' END AS Outcome,
               COALESCE((SELECT joined_at FROM made), statement_timestamp()) AS At,
               (SELECT joined_seq FROM made) AS JoinedSeq
        """;

    /// <summary>
    /// Adds <paramref name="userId"/> to a group that <paramref name="actorId"/> is an active member of, unless it
    /// already has <paramref name="maxMembers"/> active members.
    /// </summary>
    public Task<MembershipResult> AddMemberAsync(long conversationId, long actorId, long userId, int maxMembers, CancellationToken cancellationToken)
    {
        var request = Guid.NewGuid();
        return resilience.ExecuteAsync(async ct =>
        {
            // Retrying is safe: adding an active member again changes nothing, and the request's own addition is
            // recognised as such.
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            using var results = await connection.QueryMultipleAsync(new CommandDefinition(
                AddMemberSql, new { ConversationId = conversationId, ActorId = actorId, UserId = userId, MaxMembers = maxMembers, Request = request }, cancellationToken: ct));
            await results.ReadAsync<int>();
            return (await results.ReadSingleAsync<MembershipRow>()).ToResult();
        }, cancellationToken).AsTask();
    }

    // Both membership statements stamp the change with statement_timestamp(), taken after the row lock, as messages
    // are: now() is the transaction's start, before a wait for a batch holding the row, and would put the change
    // before messages stored ahead of it.
    // Anyone may leave; in a group a member may remove another; in a direct conversation nobody removes the other.
    // The conversation's row is locked first, as adding a member does, so that a batch of messages waiting for it
    // sees the removal whole once it commits (see MessageRepository.StoreBatchSql) and one that holds it is stored
    // before the removal.
    // Stamped with the request as an addition is (see AddMemberSql): an attempt that finds the request's own
    // removal committed by an earlier attempt reports it as made. Checked before the actor, who is no longer a
    // member when they removed themselves.
    private const string RemoveMemberSql = """
        SELECT 1 FROM conversations WHERE id = @ConversationId FOR UPDATE;

        WITH actor AS (
            SELECT c.is_group FROM conversation_participants p JOIN conversations c ON c.id = p.conversation_id
            WHERE p.conversation_id = @ConversationId AND p.user_id = @ActorId AND p.is_active
        ), removed AS (
            UPDATE conversation_participants SET is_active = false, updated_at = statement_timestamp(), membership_request = @Request
            WHERE conversation_id = @ConversationId AND user_id = @UserId AND is_active
              AND EXISTS (SELECT 1 FROM actor) AND (@UserId = @ActorId OR (SELECT is_group FROM actor))
            RETURNING updated_at
        ), made AS (
            SELECT updated_at FROM removed
            UNION ALL
            SELECT updated_at FROM conversation_participants
            WHERE conversation_id = @ConversationId AND user_id = @UserId AND NOT is_active AND membership_request = @Request
        )
        -- Decided from the conversation's kind, not from the target's row: a concurrent removal that won the row
        -- leaves this statement's snapshot still showing the member as active.
        SELECT CASE WHEN EXISTS (SELECT 1 FROM made) THEN 'Changed'
                    WHEN NOT EXISTS (SELECT 1 FROM actor) THEN 'NotFound'
                    WHEN @UserId <> @ActorId AND NOT (SELECT is_group FROM actor)
                         AND EXISTS (SELECT 1 FROM conversation_participants
                                     WHERE conversation_id = @ConversationId AND user_id = @UserId AND is_active) THEN 'NotGroup'
                    -- Anyone else is not a member, as in a group: the answer does not tell whether they exist.
                    ELSE 'Unchanged' END AS Outcome,
               COALESCE((SELECT updated_at FROM made), statement_timestamp()) AS At
        """;

    /// <summary>Removes <paramref name="userId"/> from a conversation, on behalf of <paramref name="actorId"/> (themselves, or a fellow group member).</summary>
    public Task<MembershipResult> RemoveMemberAsync(long conversationId, long actorId, long userId, CancellationToken cancellationToken)
    {
        var request = Guid.NewGuid();
        return resilience.ExecuteAsync(async ct =>
        {
            // Retrying is safe: removing someone who is no longer a member changes nothing, and the request's own
            // removal is recognised as such.
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            using var results = await connection.QueryMultipleAsync(new CommandDefinition(
                RemoveMemberSql, new { ConversationId = conversationId, ActorId = actorId, UserId = userId, Request = request }, cancellationToken: ct));
            await results.ReadAsync<int>();
            return (await results.ReadSingleAsync<MembershipRow>()).ToResult();
        }, cancellationToken).AsTask();
    }

    private const string ActiveMembersAmongSql = """
        SELECT user_id FROM conversation_participants
        WHERE conversation_id = @ConversationId AND user_id = ANY(@UserIds) AND is_active
        """;

    /// <summary>Which of <paramref name="userIds"/> are active members now, as committed: one query however many.</summary>
    public Task<HashSet<long>> ActiveMembersAmongAsync(long conversationId, IReadOnlyCollection<long> userIds, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            return (await connection.QueryAsync<long>(new CommandDefinition(
                ActiveMembersAmongSql, new { ConversationId = conversationId, UserIds = userIds.ToArray() }, cancellationToken: ct))).ToHashSet();
        }, cancellationToken).AsTask();

    private sealed class MembershipRow
    {
        public required string Outcome { get; init; }
        public DateTime At { get; init; }
        public long? JoinedSeq { get; init; }

        public MembershipResult ToResult() => new(Enum.Parse<MembershipOutcome>(Outcome), At, JoinedSeq);
    }
}
