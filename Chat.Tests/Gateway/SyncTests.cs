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
        Assert.That((beyond.Type(), beyond.Long("lastSeq")), Is.EqualTo(("synced", 50L)));
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
    [TestCase("""{"type":"sync","conversationId":1,"afterSeq":0,"limit":0}""", "limit must be between 1 and 500.")]
    [TestCase("""{"type":"sync","conversationId":1,"afterSeq":0,"limit":501}""", "limit must be between 1 and 500.")]
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
