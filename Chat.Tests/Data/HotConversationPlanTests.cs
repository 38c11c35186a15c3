using System.Text.RegularExpressions;
using Chat.Data.Messages;
using Chat.Tests.Infrastructure;
using Dapper;

namespace Chat.Tests.Data;

/// <summary>
/// Edits and deletes run under the conversation's row lock, which every message stored there waits for (and the
/// message writer stores one batch at a time, for every conversation): their work must not grow with the messages
/// table, nor with the conversation's history. A conversation that holds a large share of the table is where the
/// planner's estimates go wrong: "is there a visible message after this one" looks cheap to answer by reading the
/// table from its start, and is answered only near its end.
/// </summary>
public sealed class HotConversationPlanTests
{
    private const int Messages = 20_000;

    private long _conversation;
    private long _alice;
    private long _bob;

    [OneTimeSetUp]
    public async Task SeedOneConversationHoldingMostOfTheTable()
    {
        await using var connection = await TestDatabase.DataSource.OpenConnectionAsync();
        var suffix = Guid.NewGuid().ToString("N")[..12];
        _alice = await connection.ExecuteScalarAsync<long>("INSERT INTO user_profiles (external_id, display_name) VALUES (@id, 'Alice') RETURNING id", new { id = "hot-a-" + suffix });
        _bob = await connection.ExecuteScalarAsync<long>("INSERT INTO user_profiles (external_id, display_name) VALUES (@id, 'Bob') RETURNING id", new { id = "hot-b-" + suffix });
        _conversation = await connection.ExecuteScalarAsync<long>("INSERT INTO conversations (title, is_group, last_seq) VALUES ('hot', true, @Messages) RETURNING id", new { Messages });
        await connection.ExecuteAsync("""
            INSERT INTO conversation_participants (conversation_id, user_id) VALUES (@c, @a), (@c, @b);
            INSERT INTO messages (conversation_id, seq, sender_id, content, client_message_id, is_deleted)
            SELECT @c, n, CASE WHEN n % 2 = 0 THEN @a ELSE @b END, 'message ' || n, 'hot-' || @s || '-' || n, n % 10 = 0
            FROM generate_series(1, @Messages) AS n;
            ANALYZE messages;
            """, new { c = _conversation, a = _alice, b = _bob, s = suffix, Messages });
    }

    [OneTimeTearDown]
    public async Task DropIt()
    {
        // The rest of the suite runs with the statistics it had. Nothing refers to these messages (no reply, no
        // receipt), so the foreign-key checks are skipped: messages.reply_to_message_id has no index, and each
        // deleted message would read the whole table to look for replies to it (seconds for 20k messages).
        await Sql.ExecuteAsync("""
            BEGIN;
            SET LOCAL session_replication_role = replica;
            DELETE FROM messages WHERE conversation_id = @c;
            DELETE FROM conversation_participants WHERE conversation_id = @c;
            DELETE FROM conversations WHERE id = @c;
            COMMIT;
            ANALYZE messages;
            """, new { c = _conversation });
    }

    /// <summary>
    /// The most rows one node of the statement's plan touched (rows a scan returned, or that a filter or a join
    /// filter threw away), run in a transaction rolled back afterwards.
    /// </summary>
    private static async Task<(long Rows, string Plan)> RowsTouchedAsync(string sql, object parameters)
    {
        await using var connection = await TestDatabase.DataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var plan = string.Join("\n", await connection.QueryAsync<string>("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql, parameters, transaction));
        await transaction.RollbackAsync();
        // Only what is read of messages counts: a small table (conversations, in a young test database) is rightly
        // read whole by a sequential scan, and says nothing about how the statement grows with the messages.
        long rows = 0;
        string? relation = null;
        foreach (var line in plan.Split('\n'))
        {
            if (line.Contains("(actual rows=", StringComparison.Ordinal))
            {
                // A node: a scan names its table ("... on messages m ..."); a join names none, and what its join filter
                // throws away comes from the scans under it.
                relation = Regex.Match(line, @" on (\w+) \w+ \(actual") is { Success: true } scan ? scan.Groups[1].Value : null;
                if (relation == "messages")
                {
                    rows = Math.Max(rows, long.Parse(Regex.Match(line, @"actual rows=(\d+)").Groups[1].Value));
                }
            }
            else if (Regex.Match(line, @"Rows Removed by (?:Join )?Filter: (\d+)") is { Success: true } removed && relation is null or "messages")
            {
                rows = Math.Max(rows, long.Parse(removed.Groups[1].Value));
            }
        }
        return (rows, plan);
    }

    private Task<long> MessageIdAsync(long seq) =>
        Sql.ScalarAsync<long>("SELECT id FROM messages WHERE conversation_id = @c AND seq = @seq", new { c = _conversation, seq });

    [Test]
    public async Task Editing_a_recent_message_of_a_long_conversation_reads_a_few_pages_not_the_table()
    {
        var (rows, plan) = await RowsTouchedAsync(MessageEditRepository.EditSql, new
        {
            ConversationId = _conversation, MessageId = await MessageIdAsync(Messages - 2), UserId = _alice, Content = "edited", Preview = "edited",
        });

        Assert.That(plan, Does.Not.Contain("Seq Scan on messages"), plan);
        Assert.That(rows, Is.LessThan(100), plan);
    }

    [Test]
    public async Task Deleting_an_old_message_of_a_long_conversation_does_not_walk_the_history_after_it()
    {
        var (rows, plan) = await RowsTouchedAsync(MessageEditRepository.DeleteSql, new
        {
            ConversationId = _conversation, MessageId = await MessageIdAsync(100 + 2), UserId = _alice,
        });

        Assert.That(plan, Does.Not.Contain("Seq Scan on messages"), plan);
        Assert.That(rows, Is.LessThan(100), plan);
    }

    [Test]
    public async Task Deleting_a_deleted_message_again_does_not_walk_the_history()
    {
        // A retry, which the protocol says is safe: the latest message (seq 20,000) is deleted already.
        var (rows, plan) = await RowsTouchedAsync(MessageEditRepository.DeleteSql, new
        {
            ConversationId = _conversation, MessageId = await MessageIdAsync(Messages), UserId = _alice,
        });

        Assert.That(plan, Does.Not.Contain("Seq Scan on messages"), plan);
        Assert.That(rows, Is.LessThan(100), plan);
    }

    [Test]
    public async Task Deleting_the_latest_visible_message_finds_the_one_before_it_at_once()
    {
        var (rows, plan) = await RowsTouchedAsync(MessageEditRepository.DeleteSql, new
        {
            ConversationId = _conversation, MessageId = await MessageIdAsync(Messages - 1), UserId = _bob,
        });

        Assert.That(plan, Does.Contain("Index Scan Backward"), "the message before it is looked for: " + plan);
        Assert.That(plan, Does.Not.Contain("Seq Scan on messages"), plan);
        Assert.That(rows, Is.LessThan(100), plan);
    }
}
