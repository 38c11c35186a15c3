using Chat.Data;
using Chat.Data.Messages;
using Chat.Tests.Infrastructure;
using Dapper;
using Npgsql;

namespace Chat.Tests.Gateway;

public sealed class ReadReceiptTests : GatewayTest
{
    private async Task<(TestUser Alice, TestUser Bob, long Conversation, ChatTestClient A, ChatTestClient B, List<long> Ids)> FiveMessagesFromBobAsync()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var ids = new List<long>();
        for (var i = 1; i <= 5; i++)
        {
            ids.Add((await b.SendMessageAsync(conversation, $"m{i}")).Long("messageId"));
        }
        for (var i = 1; i <= 5; i++)
        {
            await a.NextAsync("message");
        }
        return (alice, bob, conversation, a, b, ids);
    }

    [Test]
    public async Task A_read_receipt_sets_the_unread_count_to_the_later_messages_and_tells_the_others()
    {
        var (alice, _, conversation, a, b, ids) = await FiveMessagesFromBobAsync();
        var laptop = await ConnectAsync(alice);

        await a.SendAsync(new { type = "read", conversationId = conversation, messageId = ids[2] });

        var receipt = await b.NextAsync("read");
        Assert.That(receipt.Long("conversationId"), Is.EqualTo(conversation));
        Assert.That(receipt.Long("messageId"), Is.EqualTo(ids[2]));
        Assert.That(receipt.Long("senderId"), Is.EqualTo(alice.Id), "senderId names the reader");
        Assert.That(receipt.Str("timestamp"), Does.EndWith("Z"));
        Assert.That((await laptop.NextAsync("read")).Long("messageId"), Is.EqualTo(ids[2]), "the reader's other devices learn it too");
        Assert.That(await Sql.UnreadCountAsync(conversation, alice.Id), Is.EqualTo(2), "two messages from others remain after the one read");
        var statuses = await Sql.QueryAsync<long>(
            "SELECT message_id FROM message_status WHERE user_id = @user AND read_at IS NOT NULL ORDER BY message_id", new { user = alice.Id });
        Assert.That(statuses, Is.EqualTo(ids.Take(3)));
    }

    // What a device counts from a receipt sent by another device of its user (protocol section 10) is what its next
    // ready says: the messages from others after the one read, deleted ones excluded, the user's own not counted.
    [Test]
    public async Task A_read_on_the_phone_moves_every_devices_position_and_their_next_ready_counts_from_it()
    {
        var (alice, _, conversation, phone, b, ids) = await FiveMessagesFromBobAsync();
        var laptop = await ConnectAsync(alice);
        await laptop.SendMessageAsync(conversation, "from the laptop");
        await phone.NextAsync("message");
        await b.SendAsync(new { type = "delete", conversationId = conversation, messageId = ids[4] });
        await laptop.NextAsync("messageDeleted");

        await phone.SendAsync(new { type = "read", conversationId = conversation, messageId = ids[1] });

        var receipt = await laptop.NextAsync("read");
        Assert.That((receipt.Long("senderId"), receipt.Long("messageId")), Is.EqualTo((alice.Id, ids[1])));
        var tablet = await ConnectAsync(alice);
        Assert.That(tablet.Ready.GetProperty("conversations")[0].GetProperty("unreadCount").GetInt32(), Is.EqualTo(2), "m3 and m4: m5 is deleted, and the user's own is not unread");
        Assert.That(tablet.Catchup.Select(f => f.Str("content")), Is.EqualTo(new[] { "m3", "m4", "from the laptop" }));
        Assert.That(await phone.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() == "read"), Is.Empty, "the reading device gets no answer");
    }

    // A first receipt after a long absence covers thousands of messages. Marking them read must not hold the
    // conversation's row: the message writer stores every conversation's messages one batch at a time, and a batch
    // waiting for that row holds up everyone's messages. The test stops the receipt inside that marking (on a status
    // row it holds) and checks that the conversation still takes messages.
    [Test]
    public async Task A_receipt_marking_messages_read_does_not_hold_up_new_messages_of_the_conversation()
    {
        var (alice, _, conversation, a, b, ids) = await FiveMessagesFromBobAsync();

        await using (await Sql.HoldAsync(
            "INSERT INTO message_status (message_id, user_id, read_at) VALUES (@message, @user, now())", new { message = ids[0], user = alice.Id }))
        {
            await a.SendAsync(new { type = "read", conversationId = conversation, messageId = ids[4] });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() >= 1, "the receipt waits for the held status row");

            var ack = await b.SendMessageAsync(conversation, "while alice's receipt is being stored");
            Assert.That(ack.Type(), Is.EqualTo("ack"), "the message was stored while the receipt waited");
        }

        Assert.That((await b.NextAsync("read")).Long("messageId"), Is.EqualTo(ids[4]));
        Assert.That(await Sql.UnreadCountAsync(conversation, alice.Id), Is.EqualTo(1), "the message sent meanwhile");
        var statuses = await Sql.QueryAsync<long>(
            "SELECT message_id FROM message_status WHERE user_id = @user AND read_at IS NOT NULL ORDER BY message_id", new { user = alice.Id });
        Assert.That(statuses, Is.EqualTo(ids));
    }

    // Two devices of one reader race their receipts through the same conversation row. Whatever order they commit
    // in, the others must see the read position only move forward: an announcement published late would step it back.
    // The race is the scheduler's: without the handler's ordering this fails in some runs (about one in five here),
    // not in every one; with it, in none.
    [Test]
    public async Task Receipts_from_two_devices_at_once_are_announced_in_the_order_they_took_effect()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var ids = (await Sql.QueryAsync<long>("""
            INSERT INTO messages (conversation_id, seq, sender_id, content, client_message_id)
            SELECT @Conversation, s, @Sender, 'm' || s, 'fill-' || s FROM generate_series(1, @Count) AS s
            RETURNING id;
            UPDATE conversations SET last_seq = @Count WHERE id = @Conversation;
            """, new { Conversation = conversation, Sender = bob.Id, Count = 200 })).Order().ToList();
        var b = await ConnectAsync(bob, catchup: false);
        var phone = await ConnectAsync(alice, catchup: false);
        var laptop = await ConnectAsync(alice, catchup: false);

        await Task.WhenAll(
            SendReadsAsync(phone, ids.Where((_, i) => i % 2 == 0)),
            SendReadsAsync(laptop, ids.Where((_, i) => i % 2 == 1)));

        var announced = new List<long>();
        while (announced.Count == 0 || announced[^1] != ids[^1])
        {
            announced.Add((await b.NextAsync("read")).Long("messageId"));
        }
        Assert.That(announced, Is.Ordered.Ascending.And.Unique, "bob saw alice's read position step back");
        Assert.That(await Sql.UnreadCountAsync(conversation, alice.Id), Is.Zero);

        async Task SendReadsAsync(ChatTestClient device, IEnumerable<long> messageIds)
        {
            foreach (var id in messageIds)
            {
                await device.SendAsync(new { type = "read", conversationId = conversation, messageId = id });
            }
        }
    }

    [Test]
    public async Task A_read_receipt_marks_the_messages_it_covers_as_read_except_deleted_ones()
    {
        var (alice, _, conversation, a, b, ids) = await FiveMessagesFromBobAsync();
        await b.SendAsync(new { type = "delete", conversationId = conversation, messageId = ids[1] });
        await a.NextAsync("messageDeleted");

        await a.SendAsync(new { type = "read", conversationId = conversation, messageId = ids[2] });
        await b.NextAsync("read");

        var statuses = await Sql.QueryAsync<long>(
            "SELECT message_id FROM message_status WHERE user_id = @user AND read_at IS NOT NULL ORDER BY message_id", new { user = alice.Id });
        Assert.That(statuses, Is.EqualTo(new[] { ids[0], ids[2] }), "a tombstone has nothing left to read");
        Assert.That(await Sql.UnreadCountAsync(conversation, alice.Id), Is.EqualTo(2));
    }

    /// <summary>
    /// Returns once the frames <paramref name="client"/> sent before have been handled: a connection's frames are
    /// handled in order, and a <c>sync</c> is always answered.
    /// </summary>
    private static async Task HandledAsync(ChatTestClient client, long conversation)
    {
        await client.SendAsync(new { type = "sync", conversationId = conversation, afterSeq = long.MaxValue / 2, limit = 1 });
        await client.NextAsync("synced");
    }

    [Test]
    public async Task Read_receipt_never_moves_the_read_position_backwards()
    {
        var (alice, _, conversation, a, b, ids) = await FiveMessagesFromBobAsync();

        await a.SendAsync(new { type = "read", conversationId = conversation, messageId = ids[3] });
        await b.NextAsync("read");
        await a.SendAsync(new { type = "read", conversationId = conversation, messageId = ids[1] });
        await HandledAsync(a, conversation);

        Assert.That(await b.CollectAsync(TimeSpan.FromMilliseconds(400), f => f.Type() == "read"), Is.Empty, "an older receipt says nothing");
        var position = await Sql.ScalarAsync<long>(
            "SELECT last_read_message_id FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @user",
            new { conversation, user = alice.Id });
        Assert.That(position, Is.EqualTo(ids[3]));
        Assert.That(await Sql.UnreadCountAsync(conversation, alice.Id), Is.EqualTo(1));
    }

    [Test]
    public async Task A_receipt_for_a_message_from_before_the_reader_rejoined_changes_nothing()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var group = await Gateway.CreateConversationAsync(alice, bob, carol);
        var b = await ConnectAsync(bob);
        var ids = new List<long>();
        for (var i = 1; i <= 3; i++)
        {
            ids.Add((await b.SendMessageAsync(group, $"m{i}")).Long("messageId"));
        }
        var c = await ConnectAsync(carol);
        await c.SendAsync(new { type = "read", conversationId = group, messageId = ids[0] });
        await b.NextAsync("read");
        using var http = Gateway.CreateHttpClient(carol.ExternalId);
        await http.DeleteAsync($"/api/conversations/{group}/members/{carol.ExternalId}");
        await b.SendMessageAsync(group, "while carol is away");
        using var bobsHttp = Gateway.CreateHttpClient(bob.ExternalId);
        await System.Net.Http.Json.HttpClientJsonExtensions.PostAsJsonAsync(bobsHttp, $"/api/conversations/{group}/members", new { externalId = carol.ExternalId });
        await b.SendMessageAsync(group, "welcome back");
        await Eventually.TrueAsync(async () => await Sql.UnreadCountAsync(group, carol.Id) == 1, "carol has the one message since she came back");

        // A receipt from a device that was offline, for a message of her first membership.
        await c.SendAsync(new { type = "read", conversationId = group, messageId = ids[1] });
        await HandledAsync(c, group);

        Assert.That(await b.CollectAsync(TimeSpan.FromMilliseconds(400), f => f.Type() == "read"), Is.Empty, "it says nothing");
        Assert.That(await Sql.UnreadCountAsync(group, carol.Id), Is.EqualTo(1), "the message sent while she was away stays out of her count");
        var position = await Sql.ScalarAsync<long?>(
            "SELECT last_read_message_id FROM conversation_participants WHERE conversation_id = @group AND user_id = @user", new { group, user = carol.Id });
        Assert.That(position, Is.Null);
        var again = await ConnectAsync(carol);
        Assert.That(again.Catchup.Select(f => f.Str("content")), Is.EqualTo(new[] { "welcome back" }));
    }

    [Test]
    public async Task Own_messages_do_not_count_as_unread()
    {
        var (alice, bob, conversation, a, b, ids) = await FiveMessagesFromBobAsync();
        await a.SendMessageAsync(conversation, "mine");
        var bobsLast = (await b.SendMessageAsync(conversation, "bob again")).Long("messageId");

        await a.SendAsync(new { type = "read", conversationId = conversation, messageId = ids[4] });
        await b.NextAsync("read");

        Assert.That(await Sql.UnreadCountAsync(conversation, alice.Id), Is.EqualTo(1), "only bob's later message is unread");
        Assert.That(bobsLast, Is.GreaterThan(ids[4]));
        Assert.That(await Sql.UnreadCountAsync(conversation, bob.Id), Is.EqualTo(1), "alice's message is unread for bob");
    }

    [Test]
    public async Task A_receipt_for_a_message_of_another_conversation_is_not_found()
    {
        var (alice, bob, conversation, a, _, _) = await FiveMessagesFromBobAsync();
        var other = await Gateway.CreateConversationAsync(alice, bob);
        await using var lateA = await Gateway.ConnectAsync(alice);
        var foreign = (await lateA.SendMessageAsync(other, "elsewhere")).Long("messageId");

        await a.SendAsync(new { type = "read", conversationId = conversation, messageId = foreign });

        var error = await a.NextAsync("error");
        Assert.That(error.Str("code"), Is.EqualTo("not_found"));
        Assert.That(await Sql.UnreadCountAsync(conversation, alice.Id), Is.EqualTo(5));
    }

    [Test]
    public async Task A_receipt_for_a_message_id_past_the_conversations_last_is_not_found_and_names_it()
    {
        var (alice, _, conversation, a, b, ids) = await FiveMessagesFromBobAsync();
        var missing = ids[^1] + 1_000_000;

        await a.SendAsync(new { type = "read", conversationId = conversation, messageId = missing });

        var error = await a.NextAsync("error");
        Assert.That((error.Str("code"), error.Str("frameType"), error.Long("conversationId"), error.Long("messageId")),
            Is.EqualTo(("not_found", "read", conversation, missing)));
        Assert.That(await Sql.UnreadCountAsync(conversation, alice.Id), Is.EqualTo(5));
        Assert.That(await b.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() == "read"), Is.Empty);
    }

    [Test]
    public async Task A_receipt_may_name_a_deleted_message_and_moves_the_position_to_it()
    {
        var (alice, _, conversation, a, b, ids) = await FiveMessagesFromBobAsync();
        await b.SendAsync(new { type = "delete", conversationId = conversation, messageId = ids[2] });
        await a.NextAsync("messageDeleted");

        await a.SendAsync(new { type = "read", conversationId = conversation, messageId = ids[2] });

        var told = await b.NextAsync("read");
        Assert.That((told.Long("messageId"), told.Long("senderId")), Is.EqualTo((ids[2], alice.Id)));
        Assert.That(await Sql.UnreadCountAsync(conversation, alice.Id), Is.EqualTo(2), "the two messages after it");
    }

    [Test]
    public async Task A_non_member_cannot_send_read_receipts()
    {
        var (_, _, conversation, _, b, ids) = await FiveMessagesFromBobAsync();
        var m = await ConnectAsync(await Gateway.CreateUserAsync("mallory"));

        await m.SendAsync(new { type = "read", conversationId = conversation, messageId = ids[0] });

        Assert.That((await m.NextAsync("error")).Str("code"), Is.EqualTo("access_denied"));
        Assert.That(await b.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() == "read"), Is.Empty);
    }

    [Test]
    public async Task Two_reads_that_wait_together_on_the_readers_row_leave_the_position_at_the_later_message()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var ids = new List<long>();
        for (var i = 1; i <= 10; i++)
        {
            ids.Add((await a.SendMessageAsync(conversation, $"m{i}")).Long("messageId"));
        }
        // The two reads run on connections of their own, so that the test can see them wait.
        const string application = "chat-read-race";
        await using var source = NpgsqlDataSource.Create(
            new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString) { ApplicationName = application }.ConnectionString);
        var reads = new ReadReceiptRepository(source, new DatabaseResilience());
        Task Waiting(int count) => Eventually.TrueAsync(
            async () => await Sql.ScalarAsync<long>(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = @application AND wait_event_type = 'Lock'", new { application }) == count,
            $"{count} reads wait for Bob's row");

        // Another transaction holds Bob's row, as a third device's read in flight does. Bob's phone reads up to
        // seq 10, then his laptop, behind, up to seq 5: both queue on the row, in that order, and go on together.
        ReadResult toTen, toFive;
        await using (var holder = await TestDatabase.DataSource.OpenConnectionAsync())
        {
            await using var holding = await holder.BeginTransactionAsync();
            await holder.ExecuteAsync("SELECT 1 FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @bob FOR UPDATE",
                new { conversation, bob = bob.Id }, holding);
            var phone = reads.MarkReadAsync(conversation, bob.Id, ids[9], CancellationToken.None);
            await Waiting(1);
            var laptop = reads.MarkReadAsync(conversation, bob.Id, ids[4], CancellationToken.None);
            await Waiting(2);
            await holding.RollbackAsync();
            (toTen, toFive) = (await phone, await laptop);
        }

        Assert.That(toTen.Outcome, Is.EqualTo(ReadOutcome.Moved));
        Assert.That(toFive.Outcome, Is.EqualTo(ReadOutcome.AlreadyRead), "the position never moves back, however the reads interleave");
        var position = await Sql.ScalarAsync<long>(
            "SELECT last_read_message_id FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @bob",
            new { conversation, bob = bob.Id });
        Assert.That(position, Is.EqualTo(ids[9]));
        Assert.That(await Sql.UnreadCountAsync(conversation, bob.Id), Is.Zero);
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM message_status WHERE user_id = @bob AND read_at IS NOT NULL", new { bob = bob.Id }),
            Is.EqualTo(10));
    }

    [Test]
    public async Task Unread_counts_stay_exact_when_reads_race_with_new_messages()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);

        var sending = Task.Run(async () =>
        {
            for (var i = 0; i < 200; i++)
            {
                await b.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = $"r{i}", content = "x" });
            }
        });
        // Alice reads whatever she has just received, as fast as it comes, while Bob keeps sending.
        var received = 0;
        long? last = null;
        while (received < 200)
        {
            var message = await a.NextAsync("message");
            received++;
            last = message.Long("messageId");
            await a.SendAsync(new { type = "read", conversationId = conversation, messageId = last });
        }
        await sending;
        // Bob hears of the last receipt once it is stored.
        await b.NextAsync(f => f.Type() == "read" && f.Long("messageId") == last);

        var expected = await Sql.ScalarAsync<long>("""
            SELECT count(*) FROM messages m
            WHERE m.conversation_id = @conversation AND m.sender_id <> @alice
              AND m.seq > (SELECT r.seq FROM conversation_participants p JOIN messages r ON r.id = p.last_read_message_id
                           WHERE p.conversation_id = @conversation AND p.user_id = @alice)
            """, new { conversation, alice = alice.Id });
        Assert.That(await Sql.UnreadCountAsync(conversation, alice.Id), Is.EqualTo(expected));
        Assert.That(expected, Is.Zero, "she read the last one");
    }
}
