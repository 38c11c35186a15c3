using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

public sealed class SyncTests : GatewayTest
{
    [Test]
    public async Task Sync_replays_from_any_position_across_several_pages()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        for (var i = 1; i <= 12; i++)
        {
            await b.SendMessageAsync(conversation, $"m{i}");
        }
        var a = await ConnectAsync(alice, catchup: false);

        var seqs = new List<long>();
        long afterSeq = 3;
        var rounds = 0;
        while (true)
        {
            await a.SendAsync(new { type = "sync", conversationId = conversation, afterSeq, limit = 4 });
            var page = new List<System.Text.Json.JsonElement>();
            System.Text.Json.JsonElement synced;
            while ((synced = await a.NextAsync(f => f.Type() is "message" or "synced")).Type() == "message")
            {
                page.Add(synced);
            }
            rounds++;
            Assert.That(page.All(m => m.GetProperty("isCatchup").GetBoolean()), Is.True);
            seqs.AddRange(page.Select(m => m.Long("seq")));
            Assert.That(synced.Long("afterSeq"), Is.EqualTo(afterSeq));
            afterSeq = synced.Long("lastSeq");
            if (!synced.GetProperty("hasMore").GetBoolean())
            {
                break;
            }
        }

        Assert.That(seqs, Is.EqualTo(Enumerable.Range(4, 9).Select(i => (long)i)));
        Assert.That(rounds, Is.EqualTo(3));
        Assert.That(afterSeq, Is.EqualTo(12));
    }

    [Test]
    public async Task Sync_with_a_change_position_replays_the_edits_and_deletes_made_while_away_to_messages_already_held()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var ids = new List<long>();
        for (var i = 1; i <= 4; i++)
        {
            ids.Add((await b.SendMessageAsync(conversation, $"m{i}")).Long("messageId"));
        }
        long heldChangeSeq;
        await using (var away = await ConnectAsync(alice, catchup: false))
        {
            var (held, synced) = await SyncAsync(away, conversation, afterSeq: 0, afterChangeSeq: 0);
            Assert.That(held.Select(f => f.Str("content")), Is.EqualTo(new[] { "m1", "m2", "m3", "m4" }));
            heldChangeSeq = synced.Long("lastChangeSeq");
        }

        await EditAsync(b, conversation, ids[0], "m1 fixed");
        await DeleteAsync(b, conversation, ids[1]);
        await EditAsync(b, conversation, ids[2], "m3 first try");
        await EditAsync(b, conversation, ids[2], "m3 final");
        await b.SendMessageAsync(conversation, "m5");
        var a = await ConnectAsync(alice, catchup: false);
        var (frames, last) = await SyncAsync(a, conversation, afterSeq: 4, afterChangeSeq: heldChangeSeq);

        Assert.That(frames.Select(f => (f.Type(), f.Long("seq"), f.Str("content"))), Is.EqualTo(new[]
        {
            ("messageEdited", 1L, "m1 fixed"),
            ("messageDeleted", 2L, null),
            ("messageEdited", 3L, "m3 final"),
            ("message", 5L, "m5"),
        }));
        Assert.That(frames.Take(3).Select(f => f.Long("changeSeq")), Is.EqualTo(new[] { heldChangeSeq + 1, heldChangeSeq + 2, heldChangeSeq + 4 }));
        Assert.That((last.Long("lastSeq"), last.Long("lastChangeSeq"), last.GetProperty("hasMore").GetBoolean()), Is.EqualTo((5L, heldChangeSeq + 4, false)));
    }

    [Test]
    public async Task Changes_page_by_the_limit_and_a_client_that_pages_on_gets_each_once_and_then_the_new_messages()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var ids = new List<long>();
        for (var i = 1; i <= 5; i++)
        {
            ids.Add((await b.SendMessageAsync(conversation, $"m{i}")).Long("messageId"));
        }
        foreach (var id in ids)
        {
            await EditAsync(b, conversation, id, $"edited {id}");
        }
        await b.SendMessageAsync(conversation, "m6");
        var a = await ConnectAsync(alice, catchup: false);

        var replayed = new List<(string?, long)>();
        var pages = new List<(long LastSeq, long LastChangeSeq, bool HasMore)>();
        (long afterSeq, long afterChangeSeq) = (5, 0);
        while (true)
        {
            var (frames, synced) = await SyncAsync(a, conversation, afterSeq, afterChangeSeq, limit: 2);
            replayed.AddRange(frames.Select(f => (f.Type(), f.Long("seq"))));
            pages.Add((synced.Long("lastSeq"), synced.Long("lastChangeSeq"), synced.GetProperty("hasMore").GetBoolean()));
            (afterSeq, afterChangeSeq) = (synced.Long("lastSeq"), synced.Long("lastChangeSeq"));
            if (!pages[^1].HasMore)
            {
                break;
            }
        }

        Assert.That(replayed, Is.EqualTo(new (string?, long)[]
        {
            ("messageEdited", 1), ("messageEdited", 2), ("messageEdited", 3), ("messageEdited", 4), ("messageEdited", 5), ("message", 6),
        }));
        Assert.That(pages, Is.EqualTo(new[] { (5L, 2L, true), (5L, 4L, true), (6L, 5L, false) }));
    }

    [Test]
    public async Task Live_edits_and_deletes_carry_consecutive_change_positions_that_ready_synced_and_replayed_messages_report()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var first = await b.SendMessageAsync(conversation, "one");
        var second = await b.SendMessageAsync(conversation, "two");

        await b.SendAsync(new { type = "edit", conversationId = conversation, messageId = first.Long("messageId"), content = "one!" });
        var edited = await a.NextAsync("messageEdited");
        await b.SendAsync(new { type = "delete", conversationId = conversation, messageId = second.Long("messageId") });
        var deleted = await a.NextAsync("messageDeleted");
        await b.SendAsync(new { type = "delete", conversationId = conversation, messageId = second.Long("messageId") });
        var repeated = await a.NextAsync("messageDeleted");
        var (replayed, holding) = await SyncAsync(a, conversation, afterSeq: 2);
        var (fromStart, synced) = await SyncAsync(a, conversation, afterSeq: 0);
        var later = await ConnectAsync(alice);

        Assert.That((edited.Long("changeSeq"), deleted.Long("changeSeq"), repeated.Long("changeSeq")), Is.EqualTo((1L, 2L, 2L)));
        Assert.That(replayed, Is.Empty, "without afterChangeSeq, sync replays no changes");
        Assert.That(holding.TryGetProperty("lastChangeSeq", out _), Is.False, "a client that holds messages and named no change position is given none");
        Assert.That(synced.Long("lastChangeSeq"), Is.EqualTo(2));
        Assert.That(fromStart.Select(f => (f.Type(), f.Long("changeSeq"))), Is.EqualTo(new[] { ("message", 1L), ("messageDeleted", 2L) }));
        Assert.That(later.Ready.GetProperty("conversations").EnumerateArray().Single(c => c.Long("conversationId") == conversation).Long("lastChangeSeq"), Is.EqualTo(2));
        Assert.That(later.Catchup.Single(f => f.Long("conversationId") == conversation).Long("changeSeq"), Is.EqualTo(1), "catch-up of an edited message carries its change position");
    }

    private static async Task<(List<System.Text.Json.JsonElement> Frames, System.Text.Json.JsonElement Synced)> SyncAsync(
        ChatTestClient client, long conversation, long afterSeq, long? afterChangeSeq = null, int limit = 100)
    {
        await client.SendAsync(afterChangeSeq is null
            ? new { type = "sync", conversationId = conversation, afterSeq, limit }
            : new { type = "sync", conversationId = conversation, afterSeq, afterChangeSeq, limit });
        var frames = new List<System.Text.Json.JsonElement>();
        System.Text.Json.JsonElement frame;
        while ((frame = await client.NextAsync(f => f.Type() is "message" or "messageEdited" or "messageDeleted" or "synced")).Type() != "synced")
        {
            frames.Add(frame);
        }
        return (frames, frame);
    }

    private static async Task EditAsync(ChatTestClient editor, long conversation, long messageId, string content)
    {
        await editor.SendAsync(new { type = "edit", conversationId = conversation, messageId, content });
        await editor.NextAsync(f => f.Type() == "messageEdited" && f.Long("messageId") == messageId && f.Str("content") == content);
    }

    private static async Task DeleteAsync(ChatTestClient editor, long conversation, long messageId)
    {
        await editor.SendAsync(new { type = "delete", conversationId = conversation, messageId });
        await editor.NextAsync(f => f.Type() == "messageDeleted" && f.Long("messageId") == messageId);
    }

    [Test]
    public async Task Sync_at_the_end_answers_synced_with_nothing_more()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        await a.SendMessageAsync(conversation, "only");

        await a.SendAsync(new { type = "sync", conversationId = conversation, afterSeq = 1 });
        var synced = await a.NextAsync();
        await a.SendAsync(new { type = "sync", conversationId = conversation, afterSeq = 50 });
        var beyond = await a.NextAsync();

        Assert.That((synced.Type(), synced.Long("lastSeq"), synced.GetProperty("hasMore").GetBoolean()), Is.EqualTo(("synced", 1L, false)));
        Assert.That((beyond.Type(), beyond.Long("lastSeq")), Is.EqualTo(("synced", 1L)), "the conversation's real end, lower than what was sent");
    }

    [Test]
    public async Task A_sync_beyond_the_end_replays_the_changes_to_every_message_and_a_change_position_beyond_the_latest_replays_none()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var ids = new List<long>();
        for (var i = 1; i <= 3; i++)
        {
            ids.Add((await a.SendMessageAsync(conversation, $"m{i}")).Long("messageId"));
        }
        await EditAsync(a, conversation, ids[0], "m1!");
        await DeleteAsync(a, conversation, ids[2]);

        var (beyond, beyondSynced) = await SyncAsync(a, conversation, afterSeq: 50, afterChangeSeq: 0);
        var (ahead, aheadSynced) = await SyncAsync(a, conversation, afterSeq: 3, afterChangeSeq: 40);

        Assert.That(beyond.Select(f => (f.Type(), f.Long("seq"), f.Long("changeSeq"))), Is.EqualTo(new[] { ("messageEdited", 1L, 1L), ("messageDeleted", 3L, 2L) }));
        Assert.That((beyondSynced.Long("afterSeq"), beyondSynced.Long("lastSeq"), beyondSynced.GetProperty("hasMore").GetBoolean(), beyondSynced.Long("lastChangeSeq")),
            Is.EqualTo((50L, 3L, false, 2L)), "lastSeq is the conversation's end when afterSeq is beyond it");
        Assert.That(ahead, Is.Empty);
        Assert.That((aheadSynced.Long("lastSeq"), aheadSynced.GetProperty("hasMore").GetBoolean(), aheadSynced.Long("lastChangeSeq")),
            Is.EqualTo((3L, false, 2L)), "the latest change, lower than what was sent");
    }

    [TestCase(1, 1, true)]
    [TestCase(500, 3, false)]
    [TestCase(null, 3, false)]
    public async Task A_limit_from_1_to_500_is_taken_and_a_null_one_is_the_default(int? limit, int replayed, bool hasMore)
    {
        var alice = await Gateway.CreateUserAsync();
        var conversation = await Gateway.CreateConversationAsync(alice, await Gateway.CreateUserAsync());
        var a = await ConnectAsync(alice);
        for (var i = 1; i <= 3; i++)
        {
            await a.SendMessageAsync(conversation, $"m{i}");
        }

        await a.SendAsync(new { type = "sync", conversationId = conversation, afterSeq = 0, limit });
        var frames = new List<System.Text.Json.JsonElement>();
        System.Text.Json.JsonElement frame;
        while ((frame = await a.NextAsync()).Type() == "message")
        {
            frames.Add(frame);
        }

        Assert.That((frame.Type(), frames.Count, frame.GetProperty("hasMore").GetBoolean()), Is.EqualTo(("synced", replayed, hasMore)));
    }

    [Test]
    public async Task Sync_of_a_conversation_the_user_is_not_in_is_refused()
    {
        var (alice, bob, mallory) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        await b.SendMessageAsync(conversation, "private");
        var m = await ConnectAsync(mallory);

        await m.SendAsync(new { type = "sync", conversationId = conversation, afterSeq = 0 });
        var error = await m.NextAsync();

        Assert.That((error.Type(), error.Str("code")), Is.EqualTo(("error", "access_denied")));
    }

    [TestCase("""{"type":"sync","conversationId":1}""", "afterSeq is required.")]
    [TestCase("""{"type":"sync","conversationId":1,"afterSeq":-1}""", "afterSeq must be a non-negative integer.")]
    [TestCase("""{"type":"sync","conversationId":1,"afterSeq":"5"}""", "afterSeq must be a non-negative integer.")]
    [TestCase("""{"type":"sync","conversationId":1,"afterSeq":0,"limit":0}""", "limit must be an integer from 1 to 500.")]
    [TestCase("""{"type":"sync","conversationId":1,"afterSeq":0,"limit":501}""", "limit must be an integer from 1 to 500.")]
    [TestCase("""{"type":"sync","conversationId":1,"afterSeq":0,"limit":2.5}""", "limit must be an integer from 1 to 500.")]
    [TestCase("""{"type":"sync","conversationId":1,"afterSeq":0,"limit":"5"}""", "limit must be an integer from 1 to 500.")]
    [TestCase("""{"type":"sync","conversationId":1,"afterSeq":0,"limit":1e2}""", "limit must be an integer from 1 to 500.")]
    [TestCase("""{"type":"sync","conversationId":1,"afterSeq":null}""", "afterSeq is required.")]
    [TestCase("""{"type":"sync","conversationId":1,"afterSeq":1.5}""", "afterSeq must be a non-negative integer.")]
    [TestCase("""{"type":"sync","conversationId":1,"afterSeq":0,"afterChangeSeq":-1}""", "afterChangeSeq must be a non-negative integer.")]
    [TestCase("""{"type":"sync","conversationId":1,"afterSeq":0,"afterChangeSeq":"0"}""", "afterChangeSeq must be a non-negative integer.")]
    public async Task A_malformed_sync_gets_bad_request_and_the_connection_stays(string frame, string message)
    {
        var alice = await Gateway.CreateUserAsync();
        var a = await ConnectAsync(alice);

        await a.SendTextAsync(frame);
        var error = await a.NextAsync();

        Assert.That((error.Str("code"), error.Str("message")), Is.EqualTo(("bad_request", message)));
        await a.SendAsync(new { type = "presence", presenceStatus = "away" });
        Assert.That(a.State, Is.EqualTo(System.Net.WebSockets.WebSocketState.Open));
    }

    [Test]
    public async Task A_client_that_connects_without_catchup_resumes_from_the_last_seq_it_holds()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        for (var i = 1; i <= 5; i++)
        {
            await b.SendMessageAsync(conversation, $"m{i}");
        }

        var a = await ConnectAsync(alice, catchup: false);
        Assert.That(a.Catchup, Is.Empty);
        var ready = a.Ready.GetProperty("conversations")[0];
        Assert.That((ready.Long("lastSeq"), ready.GetProperty("hasMore").GetBoolean()), Is.EqualTo((5L, true)));
        await a.SendAsync(new { type = "sync", conversationId = conversation, afterSeq = 2, limit = 1 });
        var one = await a.NextAsync();
        var synced = await a.NextAsync();

        Assert.That((one.Type(), one.Long("seq")), Is.EqualTo(("message", 3L)));
        Assert.That((synced.Long("lastSeq"), synced.GetProperty("hasMore").GetBoolean()), Is.EqualTo((3L, true)));
    }
}
