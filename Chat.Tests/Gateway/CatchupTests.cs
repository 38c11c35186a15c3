using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

public sealed class CatchupTests : GatewayTest
{
    protected override Dictionary<string, string?> Settings => new() { ["Chat:Limits:CatchupLimitPerConversation"] = "5" };

    [Test]
    public async Task Connect_sends_welcome_then_catchup_then_ready()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        await using (var b = await Gateway.ConnectAsync(bob))
        {
            await b.SendMessageAsync(conversation, "while you were away");
        }

        var a = await ConnectAsync(alice);

        Assert.That(a.Welcome.Long("userId"), Is.EqualTo(alice.Id));
        Assert.That(a.Welcome.Str("displayName"), Is.EqualTo(alice.Name));
        Assert.That(a.Welcome.Str("externalId"), Is.EqualTo(alice.ExternalId));
        Assert.That(a.Welcome.Str("serverTime"), Does.Match(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"), "ISO-8601 UTC with milliseconds");
        Assert.That(a.Catchup, Has.Count.EqualTo(1));
        Assert.That(a.Catchup[0].Str("timestamp"), Does.Match(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"));
        Assert.That(a.Catchup[0].Str("content"), Is.EqualTo("while you were away"));
        Assert.That(a.Catchup[0].GetProperty("isCatchup").GetBoolean(), Is.True);
        var ready = a.Ready.GetProperty("conversations").EnumerateArray().Single();
        Assert.That(ready.Long("conversationId"), Is.EqualTo(conversation));
        Assert.That(ready.Long("lastSeq"), Is.EqualTo(1));
        Assert.That(ready.GetProperty("unreadCount").GetInt32(), Is.EqualTo(1));
        Assert.That(ready.GetProperty("hasMore").GetBoolean(), Is.False);
    }

    [Test]
    public async Task A_participant_who_never_read_catches_up_on_everything_since_joining()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        await using (var b = await Gateway.ConnectAsync(bob))
        {
            for (var i = 1; i <= 3; i++)
            {
                await b.SendMessageAsync(conversation, $"m{i}");
            }
        }

        var a = await ConnectAsync(alice);

        Assert.That(a.Catchup.Select(m => m.Str("content")), Is.EqualTo(new[] { "m1", "m2", "m3" }));
        Assert.That(a.Catchup.Select(m => m.Long("seq")), Is.EqualTo(new long[] { 1, 2, 3 }));
    }

    [Test]
    public async Task Catchup_starts_after_the_read_position_and_skips_deleted_messages()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var acks = new List<long>();
        for (var i = 1; i <= 4; i++)
        {
            acks.Add((await b.SendMessageAsync(conversation, $"m{i}")).Long("messageId"));
        }
        await using (var first = await Gateway.ConnectAsync(alice))
        {
            await first.SendAsync(new { type = "read", conversationId = conversation, messageId = acks[1] });
            await b.NextAsync("read");
        }
        await Sql.ExecuteAsync("UPDATE messages SET is_deleted = true WHERE id = @id", new { id = acks[2] });

        var a = await ConnectAsync(alice);

        Assert.That(a.Catchup.Select(m => m.Str("content")), Is.EqualTo(new[] { "m4" }));
    }

    [Test]
    public async Task Catchup_is_capped_per_conversation_and_ready_says_more_remain()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var busy = await Gateway.CreateConversationAsync(alice, bob);
        var quiet = await Gateway.CreateConversationAsync(alice, bob);
        await using (var b = await Gateway.ConnectAsync(bob))
        {
            for (var i = 1; i <= 7; i++)
            {
                await b.SendMessageAsync(busy, $"m{i}");
            }
            await b.SendMessageAsync(quiet, "hi");
        }

        var a = await ConnectAsync(alice);

        Assert.That(a.Catchup.Where(m => m.Long("conversationId") == busy).Select(m => m.Long("seq")), Is.EqualTo(new long[] { 1, 2, 3, 4, 5 }));
        Assert.That(a.Catchup.Count(m => m.Long("conversationId") == quiet), Is.EqualTo(1));
        var ready = a.Ready.GetProperty("conversations").EnumerateArray().ToDictionary(c => c.Long("conversationId"));
        Assert.That(ready[busy].GetProperty("hasMore").GetBoolean(), Is.True);
        Assert.That(ready[busy].Long("lastSeq"), Is.EqualTo(7));
        Assert.That(ready[quiet].GetProperty("hasMore").GetBoolean(), Is.False);
    }

    [Test]
    public async Task A_client_that_asks_for_no_catchup_gets_only_ready()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        await using (var b = await Gateway.ConnectAsync(bob))
        {
            await b.SendMessageAsync(conversation, "missed");
        }

        var a = await ConnectAsync(alice, catchup: false);

        Assert.That(a.Catchup, Is.Empty);
        var ready = a.Ready.GetProperty("conversations").EnumerateArray().Single();
        Assert.That(ready.Long("lastSeq"), Is.EqualTo(1));
        Assert.That(ready.GetProperty("hasMore").GetBoolean(), Is.True, "the client knows to sync");
    }

    [Test]
    public async Task Without_catchup_ready_says_has_more_exactly_where_messages_follow_the_read_position()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var empty = await Gateway.CreateConversationAsync(alice, bob);
        var fromBob = await Gateway.CreateConversationAsync(alice, bob);
        var ownOnly = await Gateway.CreateConversationAsync(alice, bob);
        var allRead = await Gateway.CreateConversationAsync(alice, bob);
        var deletedOnly = await Gateway.CreateConversationAsync(alice, bob);
        await using (var b = await Gateway.ConnectAsync(bob))
        await using (var a = await Gateway.ConnectAsync(alice))
        {
            await b.SendMessageAsync(fromBob, "unread");
            await a.SendMessageAsync(ownOnly, "sent from another device");
            var read = await b.SendMessageAsync(allRead, "read");
            await a.SendAsync(new { type = "read", conversationId = allRead, messageId = read.Long("messageId") });
            await b.NextAsync("read");
            var gone = await b.SendMessageAsync(deletedOnly, "gone");
            await b.SendAsync(new { type = "delete", conversationId = deletedOnly, messageId = gone.Long("messageId") });
            await b.NextAsync("messageDeleted");
        }

        var late = await ConnectAsync(alice, catchup: false);

        Assert.That(late.Catchup, Is.Empty);
        var entries = late.Ready.GetProperty("conversations").EnumerateArray()
            .ToDictionary(c => c.Long("conversationId"), c => (c.Long("lastSeq"), c.GetProperty("unreadCount").GetInt32(), c.GetProperty("hasMore").GetBoolean()));
        Assert.That(entries, Is.EqualTo(new Dictionary<long, (long, int, bool)>
        {
            [empty] = (0, 0, false),
            [fromBob] = (1, 1, true),
            [ownOnly] = (1, 0, true),
            [allRead] = (1, 0, false),
            [deletedOnly] = (1, 0, false),
        }), "a deleted message is not one catch-up would have sent");
    }

    [TestCase("CATCHUP=FALSE", false)]
    [TestCase("catchup=False", false)]
    [TestCase("catchup=false&catchup=false", true)]
    [TestCase("catchup=0", true)]
    [TestCase("catchup=", true)]
    [TestCase("catchup", true)]
    public async Task The_catchup_parameter_ignores_case_and_anything_but_one_false_means_catchup(string query, bool caughtUp)
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        await using (var b = await Gateway.ConnectAsync(bob))
        {
            await b.SendMessageAsync(conversation, "missed");
        }

        var a = Track(await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(alice.ExternalId), query));
        await a.ReadUntilReadyAsync();

        Assert.That(a.Catchup, Has.Count.EqualTo(caughtUp ? 1 : 0));
        Assert.That(a.Ready.GetProperty("conversations")[0].GetProperty("hasMore").GetBoolean(), Is.EqualTo(!caughtUp));
    }
}

public sealed class CatchupRaceTests : GatewayTest
{
    protected override Dictionary<string, string?> Settings => new() { ["Chat:Limits:CatchupLimitPerConversation"] = "1000" };

    [Test]
    public async Task Messages_committed_during_catchup_arrive_exactly_once_with_no_gap()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        const int total = 300;

        // Bob keeps sending while Alice connects over and over. Alice never reads, so each of her sessions
        // replays from seq 1 and then continues live: together they must be exactly 1, 2, 3, ... with nothing
        // missing at the seam between catch-up and live delivery and nothing twice.
        var sending = Task.Run(async () =>
        {
            for (var i = 0; i < total; i++)
            {
                await b.SendMessageAsync(conversation, $"m{i}");
                if (i % 10 == 0)
                {
                    await Task.Delay(5);
                }
            }
        });

        var sessions = 0;
        var seamsCrossed = 0;
        while (!sending.IsCompleted)
        {
            sessions++;
            await using var a = await Gateway.ConnectAsync(alice);
            var seqs = a.Catchup.Select(m => m.Long("seq")).ToList();
            var live = await a.CollectAsync(TimeSpan.FromMilliseconds(100), f => f.Type() == "message");
            seqs.AddRange(live.Select(m => m.Long("seq")));
            if (a.Catchup.Count > 0 && live.Count > 0)
            {
                seamsCrossed++;
            }

            Assert.That(seqs, Is.EqualTo(Enumerable.Range(1, seqs.Count).Select(i => (long)i)),
                $"session {sessions}: catch-up then live is gap-free and duplicate-free");
        }
        await sending;
        Assert.That(seamsCrossed, Is.GreaterThan(0), "at least one session saw both catch-up and live messages");
    }
}
