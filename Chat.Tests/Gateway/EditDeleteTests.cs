using System.Net.Http.Json;
using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

public sealed class EditDeleteTests : GatewayTest
{
    [Test]
    public async Task An_edit_reaches_every_connection_and_shows_in_catchup_sync_history_and_preview()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var ack = await a.SendMessageAsync(conversation, "helo");
        await b.NextAsync("message");

        await a.SendAsync(new { type = "edit", conversationId = conversation, messageId = ack.Long("messageId"), content = "hello" });

        foreach (var client in new[] { a, b })
        {
            var edited = await client.NextAsync("messageEdited");
            Assert.That((edited.Long("messageId"), edited.Long("seq"), edited.Long("senderId"), edited.Str("content")),
                Is.EqualTo((ack.Long("messageId"), 1L, alice.Id, "hello")));
            Assert.That(edited.Str("editedAt"), Does.EndWith("Z"));
        }

        var later = await ConnectAsync(bob);
        Assert.That(later.Catchup.Single().Str("content"), Is.EqualTo("hello"));
        Assert.That(later.Catchup.Single().GetProperty("isEdited").GetBoolean(), Is.True);
        await later.SendAsync(new { type = "sync", conversationId = conversation, afterSeq = 0 });
        var synced = await later.NextAsync("message");
        Assert.That((synced.Str("content"), synced.GetProperty("isEdited").GetBoolean()), Is.EqualTo(("hello", true)));
        var history = await HistoryAsync(bob, conversation);
        Assert.That((history[0].Str("content"), history[0].GetProperty("isEdited").GetBoolean()), Is.EqualTo(("hello", true)));
        Assert.That(await PreviewAsync(bob, conversation), Is.EqualTo("hello"));
    }

    [Test]
    public async Task A_delete_reaches_every_connection_and_leaves_a_tombstone_in_sync_and_history()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        await a.SendMessageAsync(conversation, "keep");
        var doomed = await a.SendMessageAsync(conversation, "oops");
        await b.NextAsync(f => f.Type() == "message" && f.Long("seq") == 2);

        await a.SendAsync(new { type = "delete", conversationId = conversation, messageId = doomed.Long("messageId") });

        foreach (var client in new[] { a, b })
        {
            var deleted = await client.NextAsync("messageDeleted");
            Assert.That((deleted.Long("messageId"), deleted.Long("seq"), deleted.Long("senderId")), Is.EqualTo((doomed.Long("messageId"), 2L, alice.Id)));
        }
        Assert.That(await PreviewAsync(bob, conversation), Is.EqualTo("keep"), "the preview falls back to the latest message left");
        Assert.That(await Sql.UnreadCountAsync(conversation, bob.Id), Is.EqualTo(1), "the deleted message no longer counts as unread");

        var later = await ConnectAsync(bob);
        Assert.That(later.Catchup.Select(m => m.Str("content")), Is.EqualTo(new[] { "keep" }));
        await later.SendAsync(new { type = "sync", conversationId = conversation, afterSeq = 0 });
        var replay = new[] { await later.NextAsync(), await later.NextAsync(), await later.NextAsync() };
        Assert.That(replay.Select(f => f.Type()), Is.EqualTo(new[] { "message", "messageDeleted", "synced" }));
        Assert.That(replay[1].Long("seq"), Is.EqualTo(2));
        var history = await HistoryAsync(bob, conversation);
        Assert.That(history[1].GetProperty("isDeleted").GetBoolean(), Is.True);
        Assert.That(history[1].GetProperty("content").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(history[1].Long("seq"), Is.EqualTo(2));
        Assert.That(await Sql.ScalarAsync<string>("SELECT content FROM messages WHERE id = @id", new { id = doomed.Long("messageId") }), Is.EqualTo("oops"),
            "the row stays (its seq is taken); only its delivery stops");
    }

    [Test]
    public async Task History_shows_each_message_s_latest_change_and_the_page_the_position_to_sync_from()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var first = await a.SendMessageAsync(conversation, "one");
        var second = await a.SendMessageAsync(conversation, "two");
        await a.SendMessageAsync(conversation, "three");
        await a.SendAsync(new { type = "edit", conversationId = conversation, messageId = first.Long("messageId"), content = "one!" });
        await a.NextAsync("messageEdited");
        await a.SendAsync(new { type = "delete", conversationId = conversation, messageId = second.Long("messageId") });
        await a.NextAsync("messageDeleted");
        await a.SendAsync(new { type = "edit", conversationId = conversation, messageId = first.Long("messageId"), content = "one!!" });
        await a.NextAsync("messageEdited");
        using var http = Gateway.CreateHttpClient(bob.ExternalId);

        var page = await http.GetFromJsonAsync<JsonElement>($"/api/conversations/{conversation}/messages");

        var items = page.GetProperty("items").EnumerateArray().ToList();
        Assert.That(items.Select(m => m.GetProperty("changeSeq").ValueKind == JsonValueKind.Null ? (long?)null : m.Long("changeSeq")),
            Is.EqualTo(new long?[] { 3, 2, null }));
        Assert.That((page.Long("lastSeq"), page.Long("lastChangeSeq")), Is.EqualTo((3L, 3L)));
        var b = await ConnectAsync(bob, catchup: false);
        await b.SendAsync(new { type = "sync", conversationId = conversation, afterSeq = page.Long("lastSeq"), afterChangeSeq = page.Long("lastChangeSeq") });
        var synced = await b.NextAsync();
        Assert.That((synced.Type(), synced.GetProperty("hasMore").GetBoolean(), synced.Long("lastChangeSeq")), Is.EqualTo(("synced", false, 3L)),
            "a client that read the page holds everything: nothing is replayed");
    }

    [Test]
    public async Task Repeating_an_edit_announces_the_same_change_again_and_takes_no_new_position()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var ack = await a.SendMessageAsync(conversation, "helo");
        var edit = new { type = "edit", conversationId = conversation, messageId = ack.Long("messageId"), content = "hello" };

        await a.SendAsync(edit);
        var first = await a.NextAsync("messageEdited");
        await a.SendAsync(edit);
        var again = await a.NextAsync("messageEdited");

        Assert.That((again.Long("changeSeq"), again.Str("editedAt")), Is.EqualTo((first.Long("changeSeq"), first.Str("editedAt"))));
        Assert.That(await Sql.ScalarAsync<long>("SELECT last_change_seq FROM conversations WHERE id = @conversation", new { conversation }), Is.EqualTo(1));
        await a.SendAsync(edit with { content = "hello!" });
        Assert.That((await a.NextAsync("messageEdited")).Long("changeSeq"), Is.EqualTo(2), "a different content is a new change");
    }

    [Test]
    public async Task Deleting_twice_changes_nothing_and_tells_everyone_again()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var ack = await a.SendMessageAsync(conversation, "x");
        await a.SendAsync(new { type = "delete", conversationId = conversation, messageId = ack.Long("messageId") });
        var first = await b.NextAsync("messageDeleted");
        await a.NextAsync("messageDeleted");

        await a.SendAsync(new { type = "delete", conversationId = conversation, messageId = ack.Long("messageId") });

        Assert.That((await a.NextAsync()).Type(), Is.EqualTo("messageDeleted"));
        var again = await b.NextAsync("messageDeleted");
        Assert.That(again.Str("deletedAt"), Is.EqualTo(first.Str("deletedAt")), "the original deletion time");
        Assert.That(await Sql.UnreadCountAsync(conversation, bob.Id), Is.Zero, "taken back once, not twice");
    }

    [Test]
    public async Task Deleting_the_message_a_member_last_read_or_one_before_it_leaves_their_count_alone()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var m1 = await a.SendMessageAsync(conversation, "m1");
        var m2 = await a.SendMessageAsync(conversation, "m2");
        await a.SendMessageAsync(conversation, "m3");
        await b.SendAsync(new { type = "read", conversationId = conversation, messageId = m2.Long("messageId") });
        await a.NextAsync("read");
        Assert.That(await Sql.UnreadCountAsync(conversation, bob.Id), Is.EqualTo(1), "m3");

        foreach (var read in new[] { m2, m1 })
        {
            await a.SendAsync(new { type = "delete", conversationId = conversation, messageId = read.Long("messageId") });
            await a.NextAsync("messageDeleted");

            Assert.That(await Sql.UnreadCountAsync(conversation, bob.Id), Is.EqualTo(1), $"{read.Str("clientMessageId")} was read: it was never in the count");
        }
    }

    [Test]
    public async Task Deleting_an_unread_message_takes_it_back_from_every_count_that_holds_it()
    {
        var (alice, bob, dave) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, await Gateway.CreateUserAsync());
        var a = await ConnectAsync(alice);
        await a.SendMessageAsync(conversation, "m1");
        var m2 = await a.SendMessageAsync(conversation, "m2");
        using (var http = Gateway.CreateHttpClient(alice.ExternalId))
        {
            await http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = dave.ExternalId });
        }
        var m3 = await a.SendMessageAsync(conversation, "m3");
        // Dave joined after m2: his count holds m3 only; bob never read: m1, m2 and m3.
        Assert.That(await Sql.UnreadCountAsync(conversation, dave.Id), Is.EqualTo(1));
        Assert.That(await Sql.UnreadCountAsync(conversation, bob.Id), Is.EqualTo(3));

        await a.SendAsync(new { type = "delete", conversationId = conversation, messageId = m2.Long("messageId") });
        await a.NextAsync("messageDeleted");

        Assert.That(await Sql.UnreadCountAsync(conversation, dave.Id), Is.EqualTo(1), "m2 was never in dave's count");
        Assert.That(await Sql.UnreadCountAsync(conversation, bob.Id), Is.EqualTo(2));

        await a.SendAsync(new { type = "delete", conversationId = conversation, messageId = m3.Long("messageId") });
        await a.NextAsync("messageDeleted");

        Assert.That(await Sql.UnreadCountAsync(conversation, dave.Id), Is.Zero);
        Assert.That(await Sql.UnreadCountAsync(conversation, bob.Id), Is.EqualTo(1), "m1 is left");
    }

    [Test]
    public async Task Deleting_the_latest_message_gives_the_preview_and_its_sender_to_the_message_before_it()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        await b.SendMessageAsync(conversation, "from bob");
        var latest = await a.SendMessageAsync(conversation, "from alice");
        Assert.That(await LastMessageAsync(bob, conversation), Is.EqualTo(("from alice", (long?)alice.Id, alice.Name)));

        await a.SendAsync(new { type = "delete", conversationId = conversation, messageId = latest.Long("messageId") });
        await a.NextAsync("messageDeleted");

        Assert.That(await LastMessageAsync(bob, conversation), Is.EqualTo(("from bob", (long?)bob.Id, bob.Name)));
    }

    [Test]
    public async Task Deleting_every_message_clears_the_preview_and_its_sender()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var ack = await a.SendMessageAsync(conversation, "only one");

        await a.SendAsync(new { type = "delete", conversationId = conversation, messageId = ack.Long("messageId") });
        await a.NextAsync("messageDeleted");

        Assert.That(await LastMessageAsync(alice, conversation), Is.EqualTo(((string?)null, (long?)null, (string?)null)));
    }

    [Test]
    public async Task Editing_or_deleting_someone_elses_message_is_refused_and_changes_nothing()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var ack = await a.SendMessageAsync(conversation, "mine");

        await b.SendAsync(new { type = "edit", conversationId = conversation, messageId = ack.Long("messageId"), content = "yours now" });
        var editError = await b.NextAsync("error");
        await b.SendAsync(new { type = "delete", conversationId = conversation, messageId = ack.Long("messageId") });
        var deleteError = await b.NextAsync("error");

        Assert.That((editError.Str("code"), editError.Str("message")), Is.EqualTo(("access_denied", $"Message {ack.Long("messageId")} was sent by someone else.")));
        Assert.That(deleteError.Str("code"), Is.EqualTo("access_denied"));
        Assert.That(await Sql.ScalarAsync<string>("SELECT content FROM messages WHERE id = @id", new { id = ack.Long("messageId") }), Is.EqualTo("mine"));
        Assert.That(await Sql.ScalarAsync<bool>("SELECT is_deleted FROM messages WHERE id = @id", new { id = ack.Long("messageId") }), Is.False);
    }

    [Test]
    public async Task Editing_a_message_of_another_conversation_or_a_deleted_one_is_not_found_and_non_members_are_denied()
    {
        var (alice, bob, mallory) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var other = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var ack = await a.SendMessageAsync(conversation, "here");
        var gone = await a.SendMessageAsync(conversation, "gone");
        await a.SendAsync(new { type = "delete", conversationId = conversation, messageId = gone.Long("messageId") });
        await a.NextAsync("messageDeleted");

        await a.SendAsync(new { type = "edit", conversationId = other, messageId = ack.Long("messageId"), content = "moved?" });
        var wrongConversation = await a.NextAsync("error");
        await a.SendAsync(new { type = "edit", conversationId = conversation, messageId = gone.Long("messageId"), content = "back?" });
        var deleted = await a.NextAsync("error");
        var m = await ConnectAsync(mallory);
        await m.SendAsync(new { type = "delete", conversationId = conversation, messageId = ack.Long("messageId") });
        var stranger = await m.NextAsync("error");

        Assert.That(wrongConversation.Str("code"), Is.EqualTo("not_found"));
        Assert.That((deleted.Str("code"), deleted.Str("message")), Is.EqualTo(("not_found", $"Message {gone.Long("messageId")} is deleted.")));
        Assert.That(stranger.Str("code"), Is.EqualTo("access_denied"));
    }

    [Test]
    public async Task An_outsiders_edit_and_delete_are_refused_without_waiting_for_the_conversations_lock()
    {
        var (alice, bob, mallory) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var ack = await a.SendMessageAsync(conversation, "mine");
        var m = await ConnectAsync(mallory);

        // The message writer holds this lock while it stores a batch for the conversation; a refused outsider
        // must neither wait for it nor take it, or anyone could stall a conversation's messages by naming it.
        await using (await Sql.HoldAsync("SELECT 1 FROM conversations WHERE id = @conversation FOR UPDATE", new { conversation }))
        {
            await m.SendAsync(new { type = "edit", conversationId = conversation, messageId = ack.Long("messageId"), content = "theirs" });
            var edit = await m.NextAsync("error");
            await m.SendAsync(new { type = "delete", conversationId = conversation, messageId = ack.Long("messageId") });
            var delete = await m.NextAsync("error");

            Assert.That((edit.Str("code"), delete.Str("code")), Is.EqualTo(("access_denied", "access_denied")));
        }
        Assert.That(await Sql.ScalarAsync<string>("SELECT content FROM messages WHERE id = @id", new { id = ack.Long("messageId") }), Is.EqualTo("mine"));
    }

    [Test]
    public async Task Whose_message_it_is_is_checked_before_whether_it_is_deleted_and_a_missing_one_is_not_found()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var other = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var bobs = (await b.SendMessageAsync(conversation, "bob's")).Long("messageId");
        var elsewhere = (await a.SendMessageAsync(other, "elsewhere")).Long("messageId");
        await b.SendAsync(new { type = "delete", conversationId = conversation, messageId = bobs });
        await a.NextAsync("messageDeleted");
        var missing = elsewhere + 1_000_000;

        var errors = new List<JsonElement>();
        foreach (var frame in new object[]
        {
            new { type = "edit", conversationId = conversation, messageId = bobs, content = "mine now?" },
            new { type = "delete", conversationId = conversation, messageId = bobs },
            new { type = "delete", conversationId = conversation, messageId = missing },
            new { type = "delete", conversationId = conversation, messageId = elsewhere },
        })
        {
            await a.SendAsync(frame);
            errors.Add(await a.NextAsync("error"));
        }

        Assert.That(errors.Select(e => (e.Str("code"), e.Str("frameType"), e.Long("conversationId"), e.Long("messageId"))), Is.EqualTo(new[]
        {
            ("access_denied", "edit", conversation, bobs),
            ("access_denied", "delete", conversation, bobs),
            ("not_found", "delete", conversation, missing),
            ("not_found", "delete", conversation, elsewhere),
        }));
        Assert.That(await Sql.ScalarAsync<long>("SELECT last_change_seq FROM conversations WHERE id = @other", new { other }), Is.Zero,
            "the message of the other conversation was not deleted");
    }

    [Test]
    public async Task An_edit_of_a_message_never_edited_is_stored_as_a_change_even_with_its_original_text()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var ack = await a.SendMessageAsync(conversation, "as sent");
        await b.NextAsync("message");

        await a.SendAsync(new { type = "edit", conversationId = conversation, messageId = ack.Long("messageId"), content = "as sent" });

        var edited = await b.NextAsync("messageEdited");
        Assert.That((edited.Str("content"), edited.Long("changeSeq")), Is.EqualTo(("as sent", 1L)));
        var later = await ConnectAsync(bob);
        var replayed = later.Catchup.Single(m => m.Long("messageId") == ack.Long("messageId"));
        Assert.That((replayed.GetProperty("isEdited").GetBoolean(), replayed.Long("changeSeq")), Is.EqualTo((true, 1L)));
    }

    [Test]
    public async Task An_edit_with_invalid_content_is_a_bad_request()
    {
        var alice = await Gateway.CreateUserAsync();
        var a = await ConnectAsync(alice);

        await a.SendTextAsync("""{"type":"edit","conversationId":1,"messageId":1,"content":""}""");
        var empty = await a.NextAsync();
        await a.SendTextAsync("""{"type":"delete","conversationId":1}""");
        var missing = await a.NextAsync();

        Assert.That((empty.Str("code"), empty.Str("message")), Is.EqualTo(("bad_request", "content must be 1 to 4000 characters.")));
        Assert.That((missing.Str("code"), missing.Str("message")), Is.EqualTo(("bad_request", "messageId is required.")));
    }

    private async Task<List<JsonElement>> HistoryAsync(TestUser user, long conversation)
    {
        using var http = Gateway.CreateHttpClient(user.ExternalId);
        var page = await http.GetFromJsonAsync<JsonElement>($"/api/conversations/{conversation}/messages");
        return [.. page.GetProperty("items").EnumerateArray()];
    }

    private async Task<string?> PreviewAsync(TestUser user, long conversation) => (await LastMessageAsync(user, conversation)).Preview;

    private async Task<(string? Preview, long? SenderId, string? SenderName)> LastMessageAsync(TestUser user, long conversation)
    {
        using var http = Gateway.CreateHttpClient(user.ExternalId);
        var detail = await http.GetFromJsonAsync<JsonElement>($"/api/conversations/{conversation}");
        // GetProperty: the fields are always present, null when there is no preview.
        var senderId = detail.GetProperty("lastMessageSenderId");
        return (detail.Str("lastMessagePreview"), senderId.ValueKind == JsonValueKind.Null ? null : senderId.GetInt64(),
            detail.GetProperty("lastMessageSenderName").ValueKind == JsonValueKind.Null ? null : detail.Str("lastMessageSenderName"));
    }
}
