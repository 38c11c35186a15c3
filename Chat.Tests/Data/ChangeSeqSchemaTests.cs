using Chat.Data.Schema;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Data;

/// <summary>schema.sql on a database whose edits and deletes predate change positions.</summary>
public sealed class ChangeSeqSchemaTests
{
    [Test]
    public async Task Applying_the_schema_numbers_earlier_edits_and_deletes_in_the_order_they_were_made_and_a_second_run_changes_nothing()
    {
        var key = Guid.NewGuid().ToString("N");
        var alice = await Sql.ScalarAsync<long>("INSERT INTO user_profiles (external_id, display_name) VALUES (@id, 'Alice') RETURNING id", new { id = "a-" + key });
        var conversation = await Sql.ScalarAsync<long>("INSERT INTO conversations (title, is_group, last_seq) VALUES ('old', true, 4) RETURNING id");
        // As an earlier schema left them: edited and deleted, with no change positions.
        await Sql.ExecuteAsync("""
            INSERT INTO messages (conversation_id, seq, sender_id, content, client_message_id, is_edited, edited_at, is_deleted, deleted_at)
            VALUES (@c, 1, @a, 'edited last', 'k1', true, now() - interval '1 minute', false, NULL),
                   (@c, 2, @a, 'plain', 'k2', false, NULL, false, NULL),
                   (@c, 3, @a, 'deleted first', 'k3', false, NULL, true, now() - interval '3 minutes'),
                   (@c, 4, @a, 'edited second', 'k4', true, now() - interval '2 minutes', false, NULL)
            """, new { c = conversation, a = alice });

        await new SchemaInitializer(TestDatabase.DataSource).ApplyAsync(TestDatabase.SchemaPath, CancellationToken.None);
        var first = await ChangePositionsAsync(conversation);
        await new SchemaInitializer(TestDatabase.DataSource).ApplyAsync(TestDatabase.SchemaPath, CancellationToken.None);

        Assert.That(first, Is.EqualTo(new long?[] { 3, null, 1, 2, 3 }), "seq 1 to 4, then last_change_seq");
        Assert.That(await ChangePositionsAsync(conversation), Is.EqualTo(first));
    }

    private static async Task<long?[]> ChangePositionsAsync(long conversation) =>
    [
        .. await Sql.QueryAsync<long?>("SELECT change_seq FROM messages WHERE conversation_id = @conversation ORDER BY seq", new { conversation }),
        await Sql.ScalarAsync<long>("SELECT last_change_seq FROM conversations WHERE id = @conversation", new { conversation }),
    ];
}
