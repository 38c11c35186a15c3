-- RealtimeChat schema. Idempotent: the gateway applies it at start (Chat:Database:ApplySchemaOnStartup)
-- and running it again against a live database changes nothing and takes no lock that holds up other queries
-- (it only reads schema_migrations): it runs in one transaction at every start, so a lock taken here would hold
-- up the live traffic on that table until the script commits.
-- CREATE TABLE IF NOT EXISTS locks nothing when the table exists; every other change below is made only when the
-- catalog says it is missing (ALTER TABLE ... IF NOT EXISTS and CREATE INDEX IF NOT EXISTS lock the table first
-- and only then find there is nothing to do). A change that is needed waits at most 10 s for a busy table (the
-- queries that come meanwhile queue behind it), then fails the start with a lock timeout rather than stalling the
-- table's traffic for as long as the longest query runs: upgrades are for a quiet moment.

CREATE TABLE IF NOT EXISTS user_profiles (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id   text        NOT NULL UNIQUE,
    display_name  text        NOT NULL,
    avatar_url    text,
    last_seen_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS conversations (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title                  text,
    is_group               boolean     NOT NULL DEFAULT false,
    -- The last assigned per-conversation sequence number. Incremented in the same statement that inserts a
    -- message, so the row lock orders writers and seq stays gap-free: a rolled-back insert rolls this back too.
    last_seq               bigint      NOT NULL DEFAULT 0,
    last_message_at        timestamptz,
    last_message_preview   text,
    last_message_sender_id bigint REFERENCES user_profiles (id),
    -- For a direct (two-person) conversation, "<smaller user id>:<larger user id>": the unique key makes creating
    -- the same direct conversation twice, even concurrently, return the first one (conversations_direct_key_idx
    -- below). Null for groups.
    direct_key             text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS conversation_participants (
    conversation_id      bigint      NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id              bigint      NOT NULL REFERENCES user_profiles (id),
    is_active            boolean     NOT NULL DEFAULT true,
    unread_count         int         NOT NULL DEFAULT 0,
    last_read_message_id bigint,
    last_read_at         timestamptz,
    joined_at            timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, user_id)
);


CREATE TABLE IF NOT EXISTS messages (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id     bigint      NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq                 bigint      NOT NULL,
    sender_id           bigint      NOT NULL REFERENCES user_profiles (id),
    content             text        NOT NULL,
    message_type        text        NOT NULL DEFAULT 'text' CHECK (message_type IN ('text', 'image', 'file')),
    reply_to_message_id bigint REFERENCES messages (id),
    media_url           text,
    status              text        NOT NULL DEFAULT 'sent',
    client_message_id   text        NOT NULL,
    is_edited           boolean     NOT NULL DEFAULT false,
    edited_at           timestamptz,
    is_deleted          boolean     NOT NULL DEFAULT false,
    deleted_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz NOT NULL DEFAULT now(),
    -- Catch-up, replay and read receipts all walk a conversation by seq through this index.
    CONSTRAINT messages_conversation_seq_key UNIQUE (conversation_id, seq),
    -- The idempotency key is per sender: two users may pick the same clientMessageId.
    CONSTRAINT messages_sender_client_message_key UNIQUE (sender_id, client_message_id)
);

CREATE TABLE IF NOT EXISTS message_status (
    message_id   bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id      bigint NOT NULL REFERENCES user_profiles (id),
    delivered_at timestamptz,
    read_at      timestamptz,
    PRIMARY KEY (message_id, user_id)
);

-- Data migrations that ran once in this database, by name: those that no change of the catalog can tell apart.
CREATE TABLE IF NOT EXISTS schema_migrations (
    name        text        PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- Indexes, and changes made after the first release: each only when the catalog (or schema_migrations) says it is
-- missing.
DO $$
BEGIN
    PERFORM set_config('lock_timeout', '10s', true);

    -- Connect lists a user's active conversations.
    IF to_regclass('conversation_participants_user_active_idx') IS NULL THEN
        CREATE INDEX conversation_participants_user_active_idx ON conversation_participants (user_id) WHERE is_active;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'messages'::regclass AND attname = 'edited_at' AND NOT attisdropped) THEN
        ALTER TABLE messages ADD COLUMN edited_at timestamptz;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'messages'::regclass AND attname = 'deleted_at' AND NOT attisdropped) THEN
        ALTER TABLE messages ADD COLUMN deleted_at timestamptz;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'conversations'::regclass AND attname = 'direct_key' AND NOT attisdropped) THEN
        ALTER TABLE conversations ADD COLUMN direct_key text;
    END IF;
    -- Direct conversations made before direct_key was filled in get theirs, so they are found instead of made
    -- again; when two such conversations have the same pair, the older one gets the key. A migration of its own:
    -- one release had the column without this, so the column's presence does not tell whether it ran.
    IF NOT EXISTS (SELECT 1 FROM schema_migrations WHERE name = 'direct_key_backfill') THEN
        UPDATE conversations c SET direct_key = pairs.direct_key
        FROM (
            SELECT DISTINCT ON (direct_key) conversation_id, direct_key
            FROM (
                SELECT p.conversation_id, min(p.user_id) || ':' || max(p.user_id) AS direct_key
                FROM conversation_participants p
                JOIN conversations unkeyed ON unkeyed.id = p.conversation_id AND NOT unkeyed.is_group AND unkeyed.direct_key IS NULL
                GROUP BY p.conversation_id
                HAVING count(*) = 2
            ) candidates
            ORDER BY direct_key, conversation_id
        ) pairs
        WHERE c.id = pairs.conversation_id
          AND NOT EXISTS (SELECT 1 FROM conversations taken WHERE taken.direct_key = pairs.direct_key);
        INSERT INTO schema_migrations (name) VALUES ('direct_key_backfill');
    END IF;
    IF to_regclass('conversations_direct_key_idx') IS NULL THEN
        CREATE UNIQUE INDEX conversations_direct_key_idx ON conversations (direct_key);
    END IF;

    -- Every stored batch updates its conversations' rows (last_seq, preview) and every other member's unread
    -- count. Room left in each page lets PostgreSQL make those HOT updates (a new row version in the same page, no
    -- new index entries) instead of writing every index of the table again. That also needs no index on a column
    -- these updates change: the conversation list sorts one user's conversations, found through
    -- conversation_participants, so it needs none on last_message_at.
    IF NOT 'fillfactor=70' = ANY (COALESCE((SELECT reloptions FROM pg_class WHERE oid = 'conversations'::regclass), '{}')) THEN
        ALTER TABLE conversations SET (fillfactor = 70);
    END IF;
    IF NOT 'fillfactor=70' = ANY (COALESCE((SELECT reloptions FROM pg_class WHERE oid = 'conversation_participants'::regclass), '{}')) THEN
        ALTER TABLE conversation_participants SET (fillfactor = 70);
    END IF;
    IF to_regclass('conversations_activity_idx') IS NOT NULL THEN
        DROP INDEX conversations_activity_idx;
    END IF;

    -- Change positions: every edit and delete of a conversation's messages takes the next change_seq of that
    -- conversation (conversations.last_change_seq, bumped under the conversation's row lock, so gap-free and in
    -- commit order), and the message keeps the change_seq of its latest change. `sync` with afterChangeSeq replays
    -- the changes a client missed to messages it already holds. The index is partial: storing a message
    -- (change_seq null) adds no entry to it, so the write path does not pay for it.
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'conversations'::regclass AND attname = 'last_change_seq' AND NOT attisdropped) THEN
        ALTER TABLE conversations ADD COLUMN last_change_seq bigint NOT NULL DEFAULT 0;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'messages'::regclass AND attname = 'change_seq' AND NOT attisdropped) THEN
        ALTER TABLE messages ADD COLUMN change_seq bigint;
        -- Messages edited or deleted before change_seq existed get theirs, in the order of their changes.
        WITH unnumbered AS (
            SELECT id, conversation_id,
                   row_number() OVER (PARTITION BY conversation_id ORDER BY COALESCE(deleted_at, edited_at, created_at), id) AS n
            FROM messages
            WHERE is_edited OR is_deleted
        ), numbered AS (
            UPDATE messages m SET change_seq = c.last_change_seq + u.n
            FROM unnumbered u JOIN conversations c ON c.id = u.conversation_id
            WHERE m.id = u.id
            RETURNING m.conversation_id, m.change_seq
        )
        UPDATE conversations c SET last_change_seq = top.change_seq
        FROM (SELECT conversation_id, max(change_seq) AS change_seq FROM numbered GROUP BY conversation_id) top
        WHERE c.id = top.conversation_id;
    END IF;
    IF to_regclass('messages_conversation_change_idx') IS NULL THEN
        CREATE UNIQUE INDEX messages_conversation_change_idx ON messages (conversation_id, change_seq) WHERE change_seq IS NOT NULL;
    END IF;

    -- Where a member's reading starts: the conversation's last seq when they joined or came back. Catch-up and the
    -- unread count of a member who has read nothing take the messages after it, found through the
    -- (conversation_id, seq) key, however long the history before them. Members from before it get the last seq
    -- stored before they joined.
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'conversation_participants'::regclass AND attname = 'joined_seq' AND NOT attisdropped) THEN
        ALTER TABLE conversation_participants ADD COLUMN joined_seq bigint NOT NULL DEFAULT 0;
        UPDATE conversation_participants p
        SET joined_seq = before.seq
        FROM (
            SELECT p2.conversation_id, p2.user_id, max(m.seq) AS seq
            FROM conversation_participants p2
            JOIN messages m ON m.conversation_id = p2.conversation_id AND m.created_at < p2.joined_at
            GROUP BY p2.conversation_id, p2.user_id
        ) before
        WHERE p.conversation_id = before.conversation_id AND p.user_id = before.user_id;
    END IF;

    -- A group created with an Idempotency-Key (HTTP API) keeps the key, made unique per user, and a fingerprint of
    -- the request: a retry with the key finds the group instead of creating another. The index holds only keyed
    -- groups, and neither column ever changes, so the rows' other updates stay HOT.
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'conversations'::regclass AND attname = 'creation_key' AND NOT attisdropped) THEN
        ALTER TABLE conversations ADD COLUMN creation_key text, ADD COLUMN creation_request text;
    END IF;
    IF to_regclass('conversations_creation_key_idx') IS NULL THEN
        CREATE UNIQUE INDEX conversations_creation_key_idx ON conversations (creation_key) WHERE creation_key IS NOT NULL;
    END IF;

    -- The request that made a member's latest change (an addition or a removal): an attempt that retries a request
    -- whose commit's answer was lost finds its own change there and reports it as made, member frame and all.
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'conversation_participants'::regclass AND attname = 'membership_request' AND NOT attisdropped) THEN
        ALTER TABLE conversation_participants ADD COLUMN membership_request uuid;
    END IF;

    -- The request (a read receipt) that moved a member's read position last: an attempt that retries a receipt whose
    -- commit's answer was lost finds its own move there and reports it as made, so that it is announced.
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'conversation_participants'::regclass AND attname = 'read_request' AND NOT attisdropped) THEN
        ALTER TABLE conversation_participants ADD COLUMN read_request uuid;
    END IF;

    -- An avatar comes from the token's picture, which is held to the rule of a message's mediaUrl (an absolute http
    -- or https URL without white space, control characters or a user part) since the release that added this; one
    -- stored before it (a javascript: or data: URL, which reaches every member's client as senderAvatarUrl) is
    -- dropped, once. The user's next token with a good picture sets it again.
    IF NOT EXISTS (SELECT 1 FROM schema_migrations WHERE name = 'avatar_url_http_only') THEN
        UPDATE user_profiles SET avatar_url = NULL
        WHERE avatar_url IS NOT NULL
          AND avatar_url !~* '^https?://[^/?#@[:space:][:cntrl:]]+([/?#][^[:space:][:cntrl:]]*)?$';
        INSERT INTO schema_migrations (name) VALUES ('avatar_url_http_only');
    END IF;

    -- The preview's sender follows the preview since the release that exposed it (lastMessageSenderId): deleting
    -- the latest message moves both to the message before it. Before, only the preview moved; the sender is made
    -- right again, once, for the conversations whose latest messages were deleted.
    IF NOT EXISTS (SELECT 1 FROM schema_migrations WHERE name = 'last_message_sender_of_preview') THEN
        UPDATE conversations c
        SET last_message_sender_id = (SELECT m.sender_id FROM messages m
                                      WHERE m.conversation_id = c.id AND NOT m.is_deleted
                                      ORDER BY m.seq DESC LIMIT 1)
        WHERE EXISTS (SELECT 1 FROM messages d WHERE d.conversation_id = c.id AND d.seq = c.last_seq AND d.is_deleted);
        INSERT INTO schema_migrations (name) VALUES ('last_message_sender_of_preview');
    END IF;
END
$$;
