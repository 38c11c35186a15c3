using Chat.Data.Schema;
using Chat.Tests.Infrastructure;
using Dapper;
using Npgsql;

namespace Chat.Tests.Data;

/// <summary>
/// schema.sql against databases that an earlier schema made, each in a scratch schema of its own: the current schema
/// applied, then what came later taken out again.
/// </summary>
public sealed class SchemaUpgradeTests
{
    private string _schema = null!;
    private NpgsqlDataSource _database = null!;

    [SetUp]
    public async Task ScratchSchema()
    {
        _schema = "upgrade_" + Guid.NewGuid().ToString("N")[..12];
        await Sql.ExecuteAsync($"CREATE SCHEMA {_schema}");
        _database = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString) { SearchPath = _schema }.ConnectionString);
        await ApplySchemaAsync();
    }

    [TearDown]
    public async Task DropScratchSchema()
    {
        await _database.DisposeAsync();
        await Sql.ExecuteAsync($"DROP SCHEMA {_schema} CASCADE");
    }

    private Task ApplySchemaAsync() => new SchemaInitializer(_database).ApplyAsync(TestDatabase.SchemaPath, CancellationToken.None);

    private async Task<T> ScalarAsync<T>(string sql, object? parameters = null)
    {
        await using var connection = await _database.OpenConnectionAsync();
        return await connection.ExecuteScalarAsync<T>(sql, parameters) ?? throw new InvalidOperationException("no value: " + sql);
    }

    private async Task<List<T>> QueryAsync<T>(string sql, object? parameters = null)
    {
        await using var connection = await _database.OpenConnectionAsync();
        return (await connection.QueryAsync<T>(sql, parameters)).AsList();
    }

    [Test]
    public async Task Applying_it_to_an_up_to_date_database_takes_no_lock_that_holds_up_other_queries()
    {
        var script = await File.ReadAllTextAsync(TestDatabase.SchemaPath);
        await using var connection = await _database.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync(script, transaction: transaction);

        var locks = (await connection.QueryAsync<string>("""
            SELECT c.relname || ' ' || l.mode
            FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
            WHERE l.pid = pg_backend_pid() AND c.relnamespace = @schema::regnamespace AND l.mode <> 'AccessShareLock'
            """, new { schema = _schema }, transaction)).AsList();

        Assert.That(locks, Is.Empty, "a gateway's start would hold up the live traffic on these tables until its script commits");
    }

    [Test]
    public async Task Earlier_edits_and_deletes_are_numbered_in_the_order_they_were_made_and_a_second_run_changes_nothing()
    {
        await ScalarAsync<int>("ALTER TABLE messages DROP COLUMN change_seq; ALTER TABLE conversations DROP COLUMN last_change_seq; SELECT 1");
        var alice = await ScalarAsync<long>("INSERT INTO user_profiles (external_id, display_name) VALUES ('alice', 'Alice') RETURNING id");
        var conversation = await ScalarAsync<long>("INSERT INTO conversations (title, is_group, last_seq) VALUES ('old', true, 4) RETURNING id");
        await ScalarAsync<int>("""
            INSERT INTO messages (conversation_id, seq, sender_id, content, client_message_id, is_edited, edited_at, is_deleted, deleted_at)
            VALUES (@c, 1, @a, 'edited last', 'k1', true, now() - interval '1 minute', false, NULL),
                   (@c, 2, @a, 'plain', 'k2', false, NULL, false, NULL),
                   (@c, 3, @a, 'deleted first', 'k3', false, NULL, true, now() - interval '3 minutes'),
                   (@c, 4, @a, 'edited second', 'k4', true, now() - interval '2 minutes', false, NULL);
            SELECT 1
            """, new { c = conversation, a = alice });

        await ApplySchemaAsync();
        var first = await ChangePositionsAsync(conversation);
        await ApplySchemaAsync();

        Assert.That(first, Is.EqualTo(new long?[] { 3, null, 1, 2, 3 }), "seq 1 to 4, then last_change_seq");
        Assert.That(await ChangePositionsAsync(conversation), Is.EqualTo(first));
    }

    [Test]
    public async Task Members_from_before_joined_seq_start_reading_after_the_last_message_stored_before_they_joined()
    {
        await ScalarAsync<int>("ALTER TABLE conversation_participants DROP COLUMN joined_seq; SELECT 1");
        var (alice, bob) = (await ScalarAsync<long>("INSERT INTO user_profiles (external_id, display_name) VALUES ('alice', 'Alice') RETURNING id"),
                            await ScalarAsync<long>("INSERT INTO user_profiles (external_id, display_name) VALUES ('bob', 'Bob') RETURNING id"));
        var conversation = await ScalarAsync<long>("INSERT INTO conversations (title, is_group, last_seq) VALUES ('old', true, 3) RETURNING id");
        await ScalarAsync<int>("""
            INSERT INTO conversation_participants (conversation_id, user_id, joined_at)
            VALUES (@c, @a, now() - interval '1 hour'), (@c, @b, now() - interval '90 seconds');
            INSERT INTO messages (conversation_id, seq, sender_id, content, client_message_id, created_at)
            VALUES (@c, 1, @a, 'before bob', 'k1', now() - interval '3 minutes'),
                   (@c, 2, @a, 'before bob too', 'k2', now() - interval '2 minutes'),
                   (@c, 3, @a, 'after bob', 'k3', now() - interval '1 minute');
            SELECT 1
            """, new { c = conversation, a = alice, b = bob });

        await ApplySchemaAsync();

        Assert.That(await QueryAsync<long>("SELECT joined_seq FROM conversation_participants WHERE conversation_id = @conversation ORDER BY user_id", new { conversation }),
            Is.EqualTo(new long[] { 0, 2 }));
    }

    [Test]
    public async Task Direct_conversations_left_without_a_key_by_an_earlier_release_get_one_once()
    {
        // The release that added direct_key without filling it in: the column exists, the migration never ran.
        var (alice, bob) = (await ScalarAsync<long>("INSERT INTO user_profiles (external_id, display_name) VALUES ('alice', 'Alice') RETURNING id"),
                            await ScalarAsync<long>("INSERT INTO user_profiles (external_id, display_name) VALUES ('bob', 'Bob') RETURNING id"));
        var (older, newer) = (await ScalarAsync<long>("INSERT INTO conversations (is_group) VALUES (false) RETURNING id"),
                              await ScalarAsync<long>("INSERT INTO conversations (is_group) VALUES (false) RETURNING id"));
        await ScalarAsync<int>("""
            INSERT INTO conversation_participants (conversation_id, user_id) VALUES (@older, @a), (@older, @b), (@newer, @a), (@newer, @b);
            DELETE FROM schema_migrations WHERE name = 'direct_key_backfill';
            SELECT 1
            """, new { older, newer, a = alice, b = bob });

        await ApplySchemaAsync();
        await ApplySchemaAsync();

        Assert.That(await QueryAsync<string?>("SELECT direct_key FROM conversations WHERE id = ANY(@ids) ORDER BY id", new { ids = new[] { older, newer } }),
            Is.EqualTo(new[] { $"{alice}:{bob}", null }), "the older of two such conversations of one pair gets the key");
        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM schema_migrations WHERE name = 'direct_key_backfill'"), Is.EqualTo(1));
    }

    [Test]
    public async Task Avatars_stored_before_the_picture_rule_that_break_it_are_dropped_once()
    {
        string[] avatars =
        [
            "https://img.example.com/a.png?size=64",
            "HTTP://img.example.com/b.png",
            "javascript:alert(document.cookie)",
            "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
            "https://bank.example@evil.example/c.png",
            "https://img.example.com/a b.png",
            "/relative/d.png",
        ];
        for (var i = 0; i < avatars.Length; i++)
        {
            await ScalarAsync<long>("INSERT INTO user_profiles (external_id, display_name, avatar_url) VALUES (@id, @id, @avatar) RETURNING id", new { id = $"u{i}", avatar = avatars[i] });
        }
        await ScalarAsync<int>("DELETE FROM schema_migrations WHERE name = 'avatar_url_http_only'; SELECT 1");

        await ApplySchemaAsync();
        await ApplySchemaAsync();

        Assert.That(await QueryAsync<string?>("SELECT avatar_url FROM user_profiles ORDER BY external_id"),
            Is.EqualTo(new[] { avatars[0], avatars[1], null, null, null, null, null }));
        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM schema_migrations WHERE name = 'avatar_url_http_only'"), Is.EqualTo(1));
    }

    [Test]
    public async Task A_preview_sender_left_behind_by_a_delete_of_an_earlier_release_is_made_right_once()
    {
        var (alice, bob) = (await ScalarAsync<long>("INSERT INTO user_profiles (external_id, display_name) VALUES ('alice', 'Alice') RETURNING id"),
                            await ScalarAsync<long>("INSERT INTO user_profiles (external_id, display_name) VALUES ('bob', 'Bob') RETURNING id"));
        // Three conversations as the earlier release left them: the latest message deleted, the preview moved back
        // but not its sender; every message deleted; the latest message standing.
        var (movedBack, allDeleted, standing) = (
            await ScalarAsync<long>("INSERT INTO conversations (is_group, last_seq, last_message_preview, last_message_sender_id) VALUES (true, 2, 'from bob', @alice) RETURNING id", new { alice }),
            await ScalarAsync<long>("INSERT INTO conversations (is_group, last_seq, last_message_preview, last_message_sender_id) VALUES (true, 1, NULL, @alice) RETURNING id", new { alice }),
            await ScalarAsync<long>("INSERT INTO conversations (is_group, last_seq, last_message_preview, last_message_sender_id) VALUES (true, 1, 'hi', @bob) RETURNING id", new { bob }));
        await ScalarAsync<int>("""
            INSERT INTO messages (conversation_id, seq, sender_id, content, client_message_id, is_deleted)
            VALUES (@movedBack, 1, @bob, 'from bob', 'k1', false), (@movedBack, 2, @alice, 'from alice', 'k2', true),
                   (@allDeleted, 1, @alice, 'gone', 'k3', true),
                   (@standing, 1, @bob, 'hi', 'k4', false);
            DELETE FROM schema_migrations WHERE name = 'last_message_sender_of_preview';
            SELECT 1
            """, new { movedBack, allDeleted, standing, alice, bob });

        await ApplySchemaAsync();
        await ApplySchemaAsync();

        Assert.That(await QueryAsync<long?>("SELECT last_message_sender_id FROM conversations WHERE id = ANY(@ids) ORDER BY id", new { ids = new[] { movedBack, allDeleted, standing } }),
            Is.EqualTo(new long?[] { bob, null, bob }));
        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM schema_migrations WHERE name = 'last_message_sender_of_preview'"), Is.EqualTo(1));
    }

    private async Task<long?[]> ChangePositionsAsync(long conversation) =>
    [
        .. await QueryAsync<long?>("SELECT change_seq FROM messages WHERE conversation_id = @conversation ORDER BY seq", new { conversation }),
        await ScalarAsync<long>("SELECT last_change_seq FROM conversations WHERE id = @conversation", new { conversation }),
    ];
}
