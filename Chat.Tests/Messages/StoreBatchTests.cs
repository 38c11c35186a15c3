using Chat.Data;
using Chat.Data.Messages;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Messages;

/// <summary>The batch statement on its own, against the test database: what a duplicate tells about its original.</summary>
public sealed class StoreBatchTests
{
    private MessageRepository _messages = null!;
    private long _conversation;
    private long _alice;

    [SetUp]
    public async Task CreateConversation()
    {
        _messages = new MessageRepository(TestDatabase.DataSource, new DatabaseResilience());
        var key = Guid.NewGuid().ToString("N");
        _alice = await Sql.ScalarAsync<long>("INSERT INTO user_profiles (external_id, display_name) VALUES (@id, 'Alice') RETURNING id", new { id = "a-" + key });
        var bob = await Sql.ScalarAsync<long>("INSERT INTO user_profiles (external_id, display_name) VALUES (@id, 'Bob') RETURNING id", new { id = "b-" + key });
        _conversation = await Sql.ScalarAsync<long>("""
            WITH c AS (INSERT INTO conversations (title, is_group) VALUES ('batch', false) RETURNING id),
                 p AS (INSERT INTO conversation_participants (conversation_id, user_id) SELECT c.id, u FROM c, unnest(@members) AS u)
            SELECT id FROM c
            """, new { members = new[] { _alice, bob } });
    }

    private NewMessage Message(string key, string content) => new(_conversation, _alice, key, content, "text", null, null, content);

    private async Task<BatchItemResult> StoreAsync(NewMessage message, long publishedUpTo) =>
        (await _messages.StoreBatchAsync([message], publishedUpTo, CancellationToken.None)).Single();

    [Test]
    public async Task A_duplicate_of_an_original_above_the_published_mark_carries_the_original_as_stored()
    {
        var original = (await StoreAsync(Message("k", "as first sent"), publishedUpTo: long.MaxValue)).Result;

        var resend = await StoreAsync(Message("k", "the resend's own text"), publishedUpTo: original.MessageId - 1);

        Assert.That(resend.Result, Is.EqualTo(original with { Outcome = StoreOutcome.Duplicate }));
        Assert.That(resend.Twin, Is.EqualTo(new MessageBody("as first sent", "text", null, null)));
        Assert.That(await Sql.MessageCountAsync(_conversation), Is.EqualTo(1));
    }

    [Test]
    public async Task An_edited_original_is_carried_as_edited_and_a_deleted_one_not_at_all()
    {
        var original = (await StoreAsync(Message("k", "typo"), publishedUpTo: long.MaxValue)).Result;
        await Sql.ExecuteAsync("UPDATE messages SET content = 'fixed', is_edited = true, edited_at = now() WHERE id = @id", new { id = original.MessageId });

        var afterEdit = await StoreAsync(Message("k", "typo"), publishedUpTo: original.MessageId - 1);
        await Sql.ExecuteAsync("UPDATE messages SET is_deleted = true, deleted_at = now() WHERE id = @id", new { id = original.MessageId });
        var afterDelete = await StoreAsync(Message("k", "typo"), publishedUpTo: original.MessageId - 1);

        Assert.That(afterEdit.Twin?.Content, Is.EqualTo("fixed"));
        Assert.That(afterEdit.Twin?.EditedAt, Is.Not.Null);
        Assert.That(afterDelete.Result.Outcome, Is.EqualTo(StoreOutcome.Duplicate), "the key stays used");
        Assert.That(afterDelete.Twin, Is.Null, "a deleted message is not published");
    }

    [Test]
    public async Task Until_something_was_published_no_duplicate_carries_its_original()
    {
        var original = (await StoreAsync(Message("k", "text"), publishedUpTo: long.MaxValue)).Result;

        var resend = await StoreAsync(Message("k", "text"), publishedUpTo: long.MaxValue);

        Assert.That(resend.Result.MessageId, Is.EqualTo(original.MessageId));
        Assert.That(resend.Twin, Is.Null);
    }
}
