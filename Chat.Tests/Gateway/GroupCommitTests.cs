using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Chat.Core.Messages;
using Chat.Core.Metrics;
using Chat.Data.Messages;
using Chat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.DependencyInjection;

namespace Chat.Tests.Gateway;

/// <summary>The message writer's batches, seen from the clients and the database.</summary>
public sealed class GroupCommitTests : GatewayTest
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(400);

    private MessageWriter Writer => Gateway.Services.GetRequiredService<MessageWriter>();

    [Test]
    public async Task Batches_are_stored_through_the_writers_own_single_connection()
    {
        var writer = Gateway.Services.GetRequiredService<WriterDataSource>();
        var users = await Gateway.CreateUsersAsync(2, "solo");
        var conversation = await Gateway.CreateConversationAsync(users);
        var alice = users[0];
        var client = await ConnectAsync(alice);
        var ack = await client.SendMessageAsync(conversation, "through the writer");
        Assert.That(ack.Type(), Is.EqualTo("ack"));

        Assert.That(new Npgsql.NpgsqlConnectionStringBuilder(writer.Source.ConnectionString).MaxPoolSize, Is.EqualTo(1));
        // The pool's one connection is the one the batch ran on: it holds the prepared batch statement.
        await using var connection = await writer.Source.OpenConnectionAsync();
        var prepared = await connection.QueryAsync<string>("SELECT statement FROM pg_prepared_statements");
        Assert.That(prepared, Has.Some.Contains("WITH input AS"));
    }

    [Test]
    public async Task The_writers_connection_keeps_one_generic_plan_and_the_operators_own_options()
    {
        var configured = new Npgsql.NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString) { Options = "-c statement_timeout=12345" };
        await using var writer = new WriterDataSource(configured.ConnectionString);
        await using var connection = await writer.Source.OpenConnectionAsync();

        Assert.That(await connection.ExecuteScalarAsync<string>("SHOW plan_cache_mode"), Is.EqualTo("force_generic_plan"));
        Assert.That(await connection.ExecuteScalarAsync<string>("SHOW statement_timeout"), Is.EqualTo("12345ms"));
        Assert.That(new Npgsql.NpgsqlConnectionStringBuilder(writer.Source.ConnectionString).NoResetOnClose, Is.True);
    }

    [Test]
    public async Task Thirty_two_concurrent_senders_get_gap_free_seqs_and_every_member_sees_every_other_message_in_order()
    {
        const int senders = 32, perSender = 25, total = senders * perSender;
        var users = await Gateway.CreateUsersAsync(senders, "many");
        var conversation = await Gateway.CreateConversationAsync(users);
        var clients = new List<ChatTestClient>();
        foreach (var user in users)
        {
            clients.Add(await ConnectAsync(user));
        }
        var (batchesBefore, messagesBefore) = (Writer.Batches, Writer.Messages);

        // Every sender fires all its messages without waiting; answers and deliveries are read afterwards.
        await Task.WhenAll(clients.Select((client, i) => Task.Run(async () =>
        {
            for (var n = 0; n < perSender; n++)
            {
                await client.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = $"s{i}-{n}", content = $"{i}:{n}" });
            }
        })));
        var seen = await Task.WhenAll(clients.Select(client => ReadAcksAndDeliveriesAsync(client, perSender, total - perSender)));

        var allAcked = seen.SelectMany(s => s.Acks.Select(a => a.Long("seq"))).ToList();
        Assert.That(allAcked.Order(), Is.EqualTo(Enumerable.Range(1, total).Select(i => (long)i)), "the acks name seqs 1..N, each once");
        for (var i = 0; i < senders; i++)
        {
            var (acks, delivered) = seen[i];
            Assert.That(acks.Select(a => a.Str("clientMessageId")), Is.EqualTo(Enumerable.Range(0, perSender).Select(n => $"s{i}-{n}")),
                $"sender {i} is answered in the order it sent");
            Assert.That(acks.Select(a => a.Long("seq")), Is.Ordered.Ascending, $"sender {i}'s messages are numbered in the order it sent them");
            var expected = allAcked.Except(acks.Select(a => a.Long("seq"))).Order();
            Assert.That(delivered.Select(m => m.Long("seq")), Is.EqualTo(expected), $"member {i} sees every other message once, in seq order, with no gap");
        }
        var seqs = await Sql.QueryAsync<long>("SELECT seq FROM messages WHERE conversation_id = @conversation ORDER BY seq", new { conversation });
        Assert.That(seqs, Is.EqualTo(Enumerable.Range(1, total).Select(i => (long)i)));
        var unread = await Sql.QueryAsync<int>("SELECT unread_count FROM conversation_participants WHERE conversation_id = @conversation", new { conversation });
        Assert.That(unread, Is.All.EqualTo(total - perSender), "each member's unread count is exactly the others' messages");
        Assert.That(Writer.Messages - messagesBefore, Is.EqualTo(total));
        Assert.That(Writer.Batches - batchesBefore, Is.LessThan(total), "messages that arrive together share a batch");
    }

    [Test]
    public async Task Copies_of_one_key_in_one_batch_are_stored_once_and_every_copy_gets_the_original_ack()
    {
        var (alice, bob, carol, outsider) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"), await Gateway.CreateUserAsync("outsider"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var (phone, laptop, tablet) = (await ConnectAsync(alice), await ConnectAsync(alice), await ConnectAsync(alice));
        var b = await ConnectAsync(bob);
        var c = await ConnectAsync(carol);
        var o = await ConnectAsync(outsider);
        var committed = await phone.SendMessageAsync(conversation, "sent before", "k-old");
        await c.NextAsync("message");

        long atPause;
        await using (var pause = await WriterPause.StartAsync(Gateway, o))
        {
            atPause = pause.BatchesAtPause;
            await phone.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "k-1", content = "first copy" });
            await pause.WaitQueuedAsync(1);
            await laptop.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "k-1", content = "second copy" });
            await pause.WaitQueuedAsync(2);
            await b.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "k-1", content = "bob's own" });
            await pause.WaitQueuedAsync(3);
            await tablet.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "k-old", content = "a retry" });
            await pause.WaitQueuedAsync(4);
        }
        var onPhone = await phone.ReadThroughAnswerAsync("k-1");
        var first = onPhone[^1];
        var second = await laptop.AnswerAsync("k-1");
        var bobs = await b.AnswerAsync("k-1");
        var retry = await tablet.AnswerAsync("k-old");

        Assert.That(Writer.Batches, Is.EqualTo(atPause + 1), "the four messages went in one batch");
        Assert.That(new[] { first, second, bobs, retry }.Select(f => f.Type()), Is.All.EqualTo("ack"));
        Assert.That(second.Long("messageId"), Is.EqualTo(first.Long("messageId")), "a copy gets the first copy's ack");
        Assert.That(second.Long("seq"), Is.EqualTo(first.Long("seq")));
        Assert.That(first.Long("seq"), Is.EqualTo(2));
        Assert.That(bobs.Long("seq"), Is.EqualTo(3), "another sender's key is another message, and the copy took no seq");
        Assert.That(retry.Long("messageId"), Is.EqualTo(committed.Long("messageId")), "a retry of a committed key gets the original ack");
        Assert.That(retry.Long("seq"), Is.EqualTo(committed.Long("seq")));
        Assert.That(retry.Str("timestamp"), Is.EqualTo(committed.Str("timestamp")));

        var stored = await Sql.QueryAsync<(long Seq, string Content)>(
            "SELECT seq, content FROM messages WHERE conversation_id = @conversation ORDER BY seq", new { conversation });
        Assert.That(stored, Is.EqualTo(new[] { (1L, "sent before"), (2L, "first copy"), (3L, "bob's own") }));
        var delivered = await c.CollectAsync(Quiet, f => f.Type() == "message");
        Assert.That(delivered.Select(m => m.Str("content")), Is.EqualTo(new[] { "first copy", "bob's own" }), "each stored message is sent once, nothing for the copies");
        Assert.That(await Sql.UnreadCountAsync(conversation, carol.Id), Is.EqualTo(3));
        Assert.That(await Sql.UnreadCountAsync(conversation, bob.Id), Is.EqualTo(2));
        Assert.That(await Sql.UnreadCountAsync(conversation, alice.Id), Is.EqualTo(1));
        onPhone.AddRange(await phone.CollectAsync(Quiet));
        Assert.That(onPhone.Where(f => f.Type() == "message" && f.Long("senderId") == alice.Id), Is.Empty,
            "the connection whose copy was stored gets the ack instead of a copy");
    }

    [Test]
    public async Task Refused_messages_in_a_batch_take_no_seq_and_leave_the_others_stored()
    {
        var (alice, bob, carol, mallory) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"), await Gateway.CreateUserAsync("mallory"));
        var group = await Gateway.CreateConversationAsync(alice, bob, carol);
        var pair = await Gateway.CreateConversationAsync(alice, bob);
        var (alicePhone, aliceLaptop) = (await ConnectAsync(alice), await ConnectAsync(alice));
        var (bobPhone, bobLaptop) = (await ConnectAsync(bob), await ConnectAsync(bob));
        var c = await ConnectAsync(carol);
        var m = await ConnectAsync(mallory);
        var inGroup = await alicePhone.SendMessageAsync(group, "group opener");
        var inPair = await alicePhone.SendMessageAsync(pair, "pair opener");
        await c.NextAsync("message");
        await bobPhone.CollectAsync(Quiet);
        var outsider = await ConnectAsync(await Gateway.CreateUserAsync("outsider"));

        var queue = new (ChatTestClient Client, string Key, object Frame)[]
        {
            (alicePhone, "a-1", new { conversationId = group, content = "from alice" }),
            (m, "m-1", new { conversationId = group, content = "let me in" }),
            (bobPhone, "b-bad", new { conversationId = group, content = "wrong reply", replyToMessageId = inPair.Long("messageId") }),
            (aliceLaptop, "a-2", new { conversationId = pair, content = "in the pair" }),
            (bobLaptop, "b-1", new { conversationId = group, content = "from bob" }),
            (c, "c-1", new { conversationId = group, content = "carol replies", replyToMessageId = inGroup.Long("messageId") }),
        };
        long atPause;
        await using (var pause = await WriterPause.StartAsync(Gateway, outsider))
        {
            atPause = pause.BatchesAtPause;
            for (var i = 0; i < queue.Length; i++)
            {
                var fields = JsonSerializer.SerializeToNode(queue[i].Frame)!.AsObject();
                fields["type"] = "message";
                fields["clientMessageId"] = queue[i].Key;
                await queue[i].Client.SendTextAsync(fields.ToJsonString());
                await pause.WaitQueuedAsync(i + 1);
            }
        }
        var answers = new Dictionary<string, JsonElement>();
        var frames = new Dictionary<ChatTestClient, List<JsonElement>>();
        foreach (var (client, key, _) in queue)
        {
            frames[client] = await client.ReadThroughAnswerAsync(key);
            answers[key] = frames[client][^1];
        }

        Assert.That(Writer.Batches, Is.EqualTo(atPause + 1), "the six messages went in one batch");
        Assert.That(answers["m-1"].Str("code"), Is.EqualTo("access_denied"));
        Assert.That(answers["b-bad"].Str("code"), Is.EqualTo("bad_request"));
        Assert.That(new[] { "a-1", "b-1", "c-1" }.Select(k => answers[k].Long("seq")), Is.EqualTo(new long[] { 2, 3, 4 }),
            "the group's messages are numbered in queue order, the refused ones take no number");
        Assert.That(answers["a-2"].Long("seq"), Is.EqualTo(2), "another conversation in the same batch has its own numbers");

        var conversations = await Sql.QueryAsync<(long LastSeq, string Preview, long SenderId)>(
            "SELECT last_seq, last_message_preview, last_message_sender_id FROM conversations WHERE id = ANY(@ids) ORDER BY array_position(@ids, id)",
            new { ids = new[] { group, pair } });
        Assert.That(conversations[0], Is.EqualTo((4L, "carol replies", carol.Id)), "the preview is the group's last message of the batch");
        Assert.That(conversations[1], Is.EqualTo((2L, "in the pair", alice.Id)));
        Assert.That(await Sql.MessageCountAsync(group), Is.EqualTo(4));
        Assert.That(await Sql.UnreadCountAsync(group, alice.Id), Is.EqualTo(2), "bob's and carol's");
        Assert.That(await Sql.UnreadCountAsync(group, bob.Id), Is.EqualTo(3), "the opener, alice's and carol's");
        Assert.That(await Sql.UnreadCountAsync(group, carol.Id), Is.EqualTo(3), "the opener, alice's and bob's");
        Assert.That(await Sql.UnreadCountAsync(pair, bob.Id), Is.EqualTo(2));
        Assert.That(await Sql.UnreadCountAsync(pair, alice.Id), Is.Zero);

        var carolSees = frames[c].Concat(await c.CollectAsync(Quiet)).Where(f => f.Type() == "message").ToList();
        Assert.That(carolSees.Select(f => (f.Long("seq"), f.Str("content"))), Is.EqualTo(new[] { (2L, "from alice"), (3L, "from bob") }));
        var delivered = frames[bobPhone].Concat(await bobPhone.CollectAsync(Quiet)).Where(f => f.Type() == "message").ToList();
        Assert.That(delivered.Select(f => (f.Long("conversationId"), f.Long("seq"))),
            Is.EquivalentTo(new[] { (group, 2L), (pair, 2L), (group, 3L), (group, 4L) }));
        Assert.That(delivered.Where(f => f.Long("conversationId") == group).Select(f => f.Long("seq")), Is.Ordered.Ascending);
        Assert.That(frames[m].Concat(await m.CollectAsync(Quiet)).Where(f => f.Type() == "message"), Is.Empty);
    }

    [Test]
    public async Task A_message_whose_value_the_database_refuses_fails_alone_and_the_rest_of_its_batch_is_stored_in_order()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var group = await Gateway.CreateConversationAsync(alice, bob, carol);
        var (a, b, c) = (await ConnectAsync(alice), await ConnectAsync(bob), await ConnectAsync(carol));
        var aliceConnection = Gateway.Services.GetRequiredService<Chat.Core.Connections.ConnectionRegistry>().Connections().Single(x => x.UserId == alice.Id);
        var outsider = await ConnectAsync(await Gateway.CreateUserAsync("outsider"));
        // A value that no frame can carry any more (the reader refuses NUL in every field), handed to the writer
        // directly: it stands for whatever hole a future field might open.
        var refused = new NewMessage(group, alice.Id, "bad-" + Guid.NewGuid().ToString("N"), "fine", "text", null, "https://files.example.com/a\0b.png", "fine");

        var (storing, atPause) = await BatchAroundAsync(outsider, b, refused, aliceConnection, c, "before", "after");
        var before = (await b.ReadThroughAnswerAsync("b-1"))[^1];
        var after = (await c.ReadThroughAnswerAsync("c-1"))[^1];

        var failure = await Assert.ThrowsAsync<MessageRefusedException>(() => storing);
        Assert.That(((Npgsql.PostgresException)failure!.InnerException!).SqlState, Is.EqualTo("22021"));
        Assert.That((before.Type(), before.Long("seq"), after.Type(), after.Long("seq")), Is.EqualTo(("ack", 1L, "ack", 2L)));
        var delivered = (await a.CollectAsync(Quiet)).Where(f => f.Type() == "message").Select(f => f.Str("content"));
        Assert.That(delivered, Is.EqualTo(new[] { "before", "after" }), "published once each, in seq order");
        Assert.That(Writer.Batches, Is.EqualTo(atPause + 4), "the batch of three failed, then each went alone");
        await Assert.ThrowsAsync<MessageRefusedException>(() => Writer.StoreAsync(refused with { ClientMessageId = "bad-alone" }, aliceConnection, CancellationToken.None),
            "alone in its batch, it is refused the same way");
    }

    [Test]
    public async Task A_message_refused_after_its_sender_stopped_waiting_has_its_failure_observed_and_logged_once()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        await ConnectAsync(alice);
        var aliceConnection = Gateway.Services.GetRequiredService<Chat.Core.Connections.ConnectionRegistry>().Connections().Single(x => x.UserId == alice.Id);
        var outsider = await ConnectAsync(await Gateway.CreateUserAsync("outsider"));
        var failures = Gateway.Services.GetRequiredService<ChatMetrics>().WriterBatchFailures;
        var unobserved = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        EventHandler<UnobservedTaskExceptionEventArgs> record = (_, e) =>
        {
            if (e.Exception.InnerExceptions.Any(x => x is MessageRefusedException))
            {
                unobserved.Enqueue(e.Exception);
            }
        };
        TaskScheduler.UnobservedTaskException += record;
        try
        {
            var failed = failures.Value;
            await using (var pause = await WriterPause.StartAsync(Gateway, outsider))
            {
                await StoreAndStopWaitingAsync(pause, new NewMessage(
                    conversation, alice.Id, "bad-" + Guid.NewGuid().ToString("N"), "fine", "text", null, "https://files.example.com/a\0b.png", "fine"), aliceConnection);
            }
            await Eventually.TrueAsync(() => failures.Value == failed + 1, "the refused message's batch fails");
            // The writer's loop keeps the batch it handled last until it takes the next one.
            Assert.That((await b.SendMessageAsync(conversation, "after")).Type(), Is.EqualTo("ack"));

            for (var round = 0; round < 3; round++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
            Assert.That(unobserved, Is.Empty, "the failure of a message nobody waits for is observed");
            Assert.That(Gateway.Logs.Lines.Where(l => l.Contains("closed while its message waited")).ToList(),
                Has.Count.EqualTo(1).And.All.StartsWith("Error").And.All.Contains(nameof(MessageRefusedException)));
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= record;
        }
    }

    /// <summary>
    /// Queues <paramref name="message"/> behind the held batch, then stops waiting for it, as a session whose socket
    /// went away does. Kept out of the test's own method so that nothing of the wait stays reachable from there.
    /// </summary>
    private async Task StoreAndStopWaitingAsync(WriterPause pause, NewMessage message, Chat.Core.Connections.ChatConnection sender)
    {
        using var gone = new CancellationTokenSource();
        var storing = Writer.StoreAsync(message, sender, gone.Token);
        await pause.WaitQueuedAsync(1);
        await gone.CancelAsync();
        await Assert.CatchAsync<OperationCanceledException>(() => storing);
    }

    [Test]
    public async Task A_database_failure_while_a_refused_batch_is_stored_one_by_one_fails_the_rest_at_once_and_stores_none_of_it()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var group = await Gateway.CreateConversationAsync(alice, bob, carol);
        var (b, c) = (await ConnectAsync(bob), await ConnectAsync(carol));
        await ConnectAsync(alice);
        var aliceConnection = Gateway.Services.GetRequiredService<Chat.Core.Connections.ConnectionRegistry>().Connections().Single(x => x.UserId == alice.Id);
        var outsider = await ConnectAsync(await Gateway.CreateUserAsync("outsider"));
        var refused = new NewMessage(group, alice.Id, "bad-" + Guid.NewGuid().ToString("N"), "fine", "text", null, "https://files.example.com/a\0b.png", "fine");
        // Bob's message, stored alone, waits to raise alice's unread count; the batch of three fails on the refused
        // value before it gets that far.
        await using var alicesCount = await HoldParticipantRowAsync(group, alice.Id);

        var (storing, atPause) = await BatchAroundAsync(outsider, b, refused, aliceConnection, c, "first", "third");
        // The database goes away under bob's message on its first run and on each of its retries.
        var terminated = new HashSet<int>();
        for (var run = 1; run <= 4; run++)
        {
            var waiting = 0;
            await Eventually.TrueAsync(async () => (waiting = await WaitingBackendAsync(terminated)) != 0, $"bob's message waits, run {run}");
            terminated.Add(waiting);
            await Sql.ExecuteAsync("SELECT pg_terminate_backend(@waiting)", new { waiting });
        }

        var toBob = (await b.ReadThroughAnswerAsync("b-1"))[^1];
        var toCarol = (await c.ReadThroughAnswerAsync("c-1"))[^1];
        Assert.That((toBob.Type(), toBob.Str("code"), toCarol.Type(), toCarol.Str("code")), Is.EqualTo(("error", "internal", "error", "internal")));
        var failure = await Assert.CatchAsync(() => storing);
        Assert.That(failure, Is.InstanceOf<Npgsql.NpgsqlException>(), "the refused message fails with the outage, not as refused");
        Assert.That(Writer.Batches, Is.EqualTo(atPause + 2), "the batch of three, then bob's alone; the rest was not tried");
        Assert.That(Gateway.Services.GetRequiredService<ChatMetrics>().DatabaseRetries["57P01"], Is.EqualTo(3), "each retry is counted");
        Assert.That(await Sql.MessageCountAsync(group), Is.Zero);

        await alicesCount.DisposeAsync();
        Assert.That((await b.SendMessageAsync(group, "first", "b-1")).Long("seq"), Is.EqualTo(1), "the retry is stored");
    }

    [Test]
    public async Task A_key_that_another_gateway_commits_while_a_batch_is_storing_it_elsewhere_is_answered_as_a_duplicate_and_the_rest_of_the_batch_is_stored()
    {
        // Two gateways on one database, each with its own writer, as two processes behind a load balancer.
        await using var other = new TestGateway().Start();
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var second = await Gateway.CreateConversationAsync(alice, bob, carol);
        var elsewhere = await Gateway.CreateConversationAsync(carol, bob);
        var phone = await ConnectAsync(alice);
        var laptop = Track(await other.ConnectAsync(alice));
        var b = Track(await other.ConnectAsync(bob));
        var c = Track(await other.ConnectAsync(carol));
        var otherWriter = other.Services.GetRequiredService<MessageWriter>();

        await using var bobsCount = await HoldParticipantRowAsync(conversation, bob.Id);
        await using (await HoldRowAsync(elsewhere))
        {
            // This gateway's batch has inserted the phone's copy and waits to raise bob's unread count, which the
            // statement does last, so that copy stays uncommitted. A batch of one takes no sender lock.
            await phone.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "twice", content = "from the phone" });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() == 1, "the first gateway's batch waits");

            // The other gateway's writer is held on a batch of its own while two messages queue behind it. The
            // laptop's copy goes to another conversation, so its batch does not queue behind the first one's
            // conversation row.
            await c.SendAsync(new { type = "message", conversationId = elsewhere, clientMessageId = "hold", content = "elsewhere" });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() == 2, "the other gateway's first batch waits");
            await QueueAsync(otherWriter, laptop, second, "twice", "from the laptop", "the laptop's copy is queued");
            await QueueAsync(otherWriter, b, second, "bob-1", "from bob", "bob's message is queued");
        }
        // Both go in the other gateway's next batch, which takes its snapshot while the phone's copy is uncommitted,
        // inserts the laptop's copy, and waits on the key's unique index for the first batch's outcome.
        Assert.That((await c.AnswerAsync("hold")).Type(), Is.EqualTo("ack"));
        await Eventually.TrueAsync(async () => otherWriter.Queued == 0 && await Sql.LockWaitersAsync() == 2, "the other gateway's second batch waits");
        var batchesBefore = otherWriter.Batches;
        await bobsCount.DisposeAsync();

        var fromPhone = await phone.AnswerAsync("twice");
        var fromLaptop = await laptop.AnswerAsync("twice");
        var fromBob = await b.AnswerAsync("bob-1");

        Assert.That((fromPhone.Type(), fromLaptop.Type(), fromBob.Type()), Is.EqualTo(("ack", "ack", "ack")));
        Assert.That((fromLaptop.Long("messageId"), fromLaptop.Long("conversationId")), Is.EqualTo((fromPhone.Long("messageId"), conversation)),
            "the copy gets the committed message's ack");
        Assert.That(fromBob.Long("seq"), Is.EqualTo(1), "the rolled-back run gave its seq back");
        Assert.That(otherWriter.Batches, Is.EqualTo(batchesBefore), "the batch ran again whole, not one message at a time");
        Assert.That(other.Services.GetRequiredService<ChatMetrics>().DatabaseRetries.Total, Is.Zero, "a rerun, not a retry of a fault");
        var stored = await Sql.QueryAsync<(long Conversation, long Seq, string Content)>(
            "SELECT conversation_id, seq, content FROM messages WHERE conversation_id = ANY(@conversations) ORDER BY conversation_id, seq",
            new { conversations = new[] { conversation, second } });
        Assert.That(stored, Is.EqualTo(new[] { (conversation, 1L, "from the phone"), (second, 1L, "from bob") }));
    }

    [Test]
    public async Task A_key_committed_by_a_writer_that_takes_no_locks_makes_the_batch_run_again_whole_and_answer_it_as_a_duplicate()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var elsewhere = await Gateway.CreateConversationAsync(alice, bob);
        var held = await Gateway.CreateConversationAsync(carol, bob);
        var (a, b, c) = (await ConnectAsync(alice), await ConnectAsync(bob), await ConnectAsync(carol));
        // A hand-written insert of the same key (as a gateway of an older version would make), not yet committed.
        await using var byHand = await TestDatabase.DataSource.OpenConnectionAsync();
        var transaction = await byHand.BeginTransactionAsync();
        var handId = await byHand.ExecuteScalarAsync<long>("""
            INSERT INTO messages (conversation_id, seq, sender_id, content, client_message_id)
            VALUES (@elsewhere, 1, @alice, 'by hand', 'twice') RETURNING id
            """, new { elsewhere, alice = alice.Id }, transaction);

        long atPause;
        await using (await HoldRowAsync(held))
        {
            // The writer is held on a batch of its own while the two messages queue behind it.
            await c.SendAsync(new { type = "message", conversationId = held, clientMessageId = "hold", content = "held" });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() == 1, "the writer is held");
            atPause = Writer.Batches;
            await QueueAsync(Writer, a, conversation, "twice", "from the socket", "alice's message is queued");
            await QueueAsync(Writer, b, conversation, "b-1", "from bob", "bob's message is queued");
        }
        Assert.That((await c.AnswerAsync("hold")).Type(), Is.EqualTo("ack"));
        await Eventually.TrueAsync(async () => Writer.Queued == 0 && await Sql.LockWaitersAsync() == 1, "the batch waits on the key's index");
        await transaction.CommitAsync();

        var fromAlice = (await a.ReadThroughAnswerAsync("twice"))[^1];
        var fromBob = (await b.ReadThroughAnswerAsync("b-1"))[^1];
        Assert.That((fromAlice.Type(), fromAlice.Long("messageId"), fromAlice.Long("conversationId")), Is.EqualTo(("ack", handId, elsewhere)));
        Assert.That((fromBob.Type(), fromBob.Long("seq")), Is.EqualTo(("ack", 1L)), "the rolled-back run gave its seqs back");
        Assert.That(Writer.Batches, Is.EqualTo(atPause + 1), "the batch ran again whole, not one message at a time");
        Assert.That(await Sql.QueryAsync<string>("SELECT content FROM messages WHERE conversation_id = @conversation", new { conversation }), Is.EqualTo(new[] { "from bob" }));
    }

    [Test]
    public async Task Two_gateways_storing_one_senders_keys_in_opposite_orders_do_not_deadlock()
    {
        await using var other = new TestGateway().Start();
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var (here, there) = (await Gateway.CreateConversationAsync(alice, bob), await Gateway.CreateConversationAsync(alice, bob));
        var (holdHere, holdThere) = (await Gateway.CreateConversationAsync(carol, bob), await Gateway.CreateConversationAsync(carol, alice));
        var (aliceHere, bobHere, carolHere) = (await ConnectAsync(alice), await ConnectAsync(bob), await ConnectAsync(carol));
        var (aliceThere, bobThere, carolThere) = (Track(await other.ConnectAsync(alice)), Track(await other.ConnectAsync(bob)), Track(await other.ConnectAsync(carol)));
        var otherWriter = other.Services.GetRequiredService<MessageWriter>();
        // Each batch's second row waits half a second before its insert, so both batches have inserted their
        // first key when they insert their second: the other's first.
        await Sql.ExecuteAsync("""
            CREATE OR REPLACE FUNCTION test_slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.content = 'slow' THEN PERFORM pg_sleep(0.5); END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_slow_insert BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION test_slow_insert();
            """);
        try
        {
            var hereRow = await HoldRowAsync(holdHere);
            var thereRow = await HoldRowAsync(holdThere);
            await carolHere.SendAsync(new { type = "message", conversationId = holdHere, clientMessageId = "hold-here", content = "hold" });
            await carolThere.SendAsync(new { type = "message", conversationId = holdThere, clientMessageId = "hold-there", content = "hold" });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() == 2, "both writers are held");
            await QueueAsync(Writer, aliceHere, here, "k1", "fast", "k1 queued here");
            await QueueAsync(Writer, bobHere, here, "k2", "slow", "k2 queued here");
            await QueueAsync(otherWriter, bobThere, there, "k2", "fast", "k2 queued there");
            await QueueAsync(otherWriter, aliceThere, there, "k1", "slow", "k1 queued there");
            await Task.WhenAll(hereRow.DisposeAsync().AsTask(), thereRow.DisposeAsync().AsTask());

            var answers = new[] { (aliceHere, "k1"), (bobHere, "k2"), (bobThere, "k2"), (aliceThere, "k1") };
            var acks = new List<JsonElement>();
            foreach (var (client, key) in answers)
            {
                acks.Add((await client.ReadThroughAnswerAsync(key))[^1]);
            }
            Assert.That(acks.Select(f => f.Type()), Is.All.EqualTo("ack"));
            Assert.That(acks[3].Long("messageId"), Is.EqualTo(acks[0].Long("messageId")), "one k1");
            Assert.That(acks[2].Long("messageId"), Is.EqualTo(acks[1].Long("messageId")), "one k2");
            Assert.That(Gateway.Services.GetRequiredService<ChatMetrics>().DatabaseRetries["40P01"] + other.Services.GetRequiredService<ChatMetrics>().DatabaseRetries["40P01"],
                Is.Zero, "no deadlock was broken and retried");
        }
        finally
        {
            await Sql.ExecuteAsync("DROP TRIGGER IF EXISTS test_slow_insert ON messages; DROP FUNCTION IF EXISTS test_slow_insert();");
        }
    }

    [Test]
    public async Task Across_two_gateways_a_later_seq_never_has_an_earlier_timestamp()
    {
        await using var other = new TestGateway().Start();
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var held = await Gateway.CreateConversationAsync(carol, bob);
        var first = await Gateway.CreateConversationAsync(alice, bob);
        var shared = await Gateway.CreateConversationAsync(alice, bob, carol);
        // A connection's messages are handled one after the other, so alice sends from two devices.
        var phone = await ConnectAsync(alice);
        var laptop = await ConnectAsync(alice);
        var c = await ConnectAsync(carol);
        var b = Track(await other.ConnectAsync(bob));

        await using var firstRow = await HoldRowAsync(first);
        await using (await HoldRowAsync(held))
        {
            // This gateway's writer is held on a batch while alice's two messages queue behind it.
            await c.SendAsync(new { type = "message", conversationId = held, clientMessageId = "hold", content = "held" });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() == 1, "the first batch waits");
            await QueueAsync(Writer, phone, first, "a-1", "to first", "alice's first message is queued");
            await QueueAsync(Writer, laptop, shared, "a-2", "to shared", "alice's messages are queued");
        }
        // Alice's batch begins, takes nothing until it has the row of `first` (the lower id), and meanwhile the
        // other gateway stores bob's message in `shared`.
        Assert.That((await c.AnswerAsync("hold")).Type(), Is.EqualTo("ack"));
        await Eventually.TrueAsync(async () => Writer.Queued == 0 && await Sql.LockWaitersAsync() == 1, "alice's batch waits");
        var fromBob = await b.SendMessageAsync(shared, "bob first", "b-1");
        Assert.That(fromBob.Long("seq"), Is.EqualTo(1));
        await firstRow.DisposeAsync();

        var fromAlice = await laptop.AnswerAsync("a-2");
        Assert.That(fromAlice.Long("seq"), Is.EqualTo(2));
        var stored = await Sql.QueryAsync<DateTime>("SELECT created_at FROM messages WHERE conversation_id = @shared ORDER BY seq", new { shared });
        Assert.That(stored, Is.Ordered, "seq 2 is not stamped before seq 1");
        Assert.That(fromAlice.GetProperty("timestamp").GetDateTime(), Is.GreaterThanOrEqualTo(fromBob.GetProperty("timestamp").GetDateTime()));
    }

    [Test]
    public async Task A_member_added_while_a_batch_waits_for_the_conversation_has_the_batchs_message_counted_as_unread()
    {
        var (alice, bob, carol, dave) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"), await Gateway.CreateUserAsync("dave"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        using var http = Gateway.CreateHttpClient(bob.ExternalId);

        Task<HttpResponseMessage> adding;
        await using (await HoldRowAsync(conversation))
        {
            adding = http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = dave.ExternalId });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() == 1, "the add waits for the conversation's row");
            await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "as-dave-joins", content = "hello" });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() == 2, "the batch waits behind the add");
        }

        Assert.That((await adding).StatusCode, Is.EqualTo(HttpStatusCode.Created));
        Assert.That((await a.AnswerAsync("as-dave-joins")).Long("seq"), Is.EqualTo(1));
        var daves = await Sql.QueryAsync<(long JoinedSeq, int UnreadCount)>(
            "SELECT joined_seq, unread_count FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @user",
            new { conversation, user = dave.Id });
        Assert.That(daves.Single(), Is.EqualTo((0L, 1)), "dave joined before the message was stored, and it counts for him");
        var d = await ConnectAsync(dave);
        Assert.That(d.Catchup.Select(f => f.Str("content")), Is.EqualTo(new[] { "hello" }));
        Assert.That(d.Ready.GetProperty("conversations")[0].Long("unreadCount"), Is.EqualTo(1), "the count agrees with what catch-up shows");
    }

    [Test]
    public async Task A_member_removed_while_a_batch_waits_for_the_conversation_is_refused_and_nothing_of_theirs_is_stored()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var b = await ConnectAsync(bob);
        var c = await ConnectAsync(carol);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        Task<HttpResponseMessage> removing;
        await using (await HoldRowAsync(conversation))
        {
            removing = http.DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}");
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() == 1, "the removal waits for the conversation's row");
            await c.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "as-carol-goes", content = "still here?" });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() == 2, "the batch waits behind the removal");
        }

        Assert.That((await removing).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        var answer = await c.AnswerAsync("as-carol-goes");
        Assert.That((answer.Type(), answer.Str("code")), Is.EqualTo(("error", "access_denied")));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.Zero);
        Assert.That(await b.CollectAsync(Quiet, f => f.Type() == "message"), Is.Empty);
    }

    [Test]
    public async Task A_message_whose_batch_holds_the_conversation_when_its_sender_is_removed_is_stored_before_the_removal()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var b = await ConnectAsync(bob);
        var c = await ConnectAsync(carol);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        Task<HttpResponseMessage> removing;
        await using (await HoldRowAsync(conversation))
        {
            await c.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "last-words", content = "goodbye" });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() == 1, "the batch waits for the conversation's row");
            removing = http.DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}");
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() == 2, "the removal waits behind the batch");
        }

        Assert.That((await removing).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That((await c.AnswerAsync("last-words")).Type(), Is.EqualTo("ack"));
        // Stored before the removal; its frame and the member frame are published by different paths, in either order.
        var seenByBob = await b.CollectAsync(Quiet, f => f.Type() is "message" or "member");
        Assert.That(seenByBob.Select(f => f.Type()), Is.EquivalentTo(new[] { "message", "member" }));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(1));
    }

    /// <summary>
    /// Makes the writer's next batch three messages to <paramref name="refused"/>'s conversation: b-1 from
    /// <paramref name="before"/>, <paramref name="refused"/> handed to the writer directly, c-1 from
    /// <paramref name="after"/>. Returns the refused message's outcome and the writer's batch count at the pause.
    /// </summary>
    private async Task<(Task<StoreResult> Storing, long BatchesAtPause)> BatchAroundAsync(
        ChatTestClient outsider, ChatTestClient before, NewMessage refused, Chat.Core.Connections.ChatConnection refusedSender, ChatTestClient after,
        string beforeContent, string afterContent)
    {
        await using var pause = await WriterPause.StartAsync(Gateway, outsider);
        await before.SendAsync(new { type = "message", conversationId = refused.ConversationId, clientMessageId = "b-1", content = beforeContent });
        await pause.WaitQueuedAsync(1);
        var storing = Writer.StoreAsync(refused, refusedSender, CancellationToken.None);
        await pause.WaitQueuedAsync(2);
        await after.SendAsync(new { type = "message", conversationId = refused.ConversationId, clientMessageId = "c-1", content = afterContent });
        await pause.WaitQueuedAsync(3);
        return (storing, pause.BatchesAtPause);
    }

    /// <summary>Sends a message and waits until it is in <paramref name="writer"/>'s queue, behind a batch that is held.</summary>
    private static async Task QueueAsync(MessageWriter writer, ChatTestClient client, long conversationId, string clientMessageId, string content, string what)
    {
        var queued = writer.Queued;
        await client.SendAsync(new { type = "message", conversationId, clientMessageId, content });
        await Eventually.TrueAsync(() => writer.Queued == queued + 1, what);
    }

    /// <summary>Locks a conversation's row, as a writer in the middle of its transaction does, until disposed.</summary>
    private static Task<IAsyncDisposable> HoldRowAsync(long conversationId) =>
        Sql.HoldAsync("SELECT 1 FROM conversations WHERE id = @conversationId FOR UPDATE", new { conversationId });

    /// <summary>Locks a participant's row, which a batch updates last (their unread count), until disposed.</summary>
    private static Task<IAsyncDisposable> HoldParticipantRowAsync(long conversationId, long userId) =>
        Sql.HoldAsync("SELECT 1 FROM conversation_participants WHERE conversation_id = @conversationId AND user_id = @userId FOR UPDATE",
            new { conversationId, userId });

    /// <summary>The process id of a backend of the test database waiting for a lock, other than <paramref name="except"/>; 0 when none.</summary>
    private static Task<int> WaitingBackendAsync(IReadOnlyCollection<int> except) =>
        Sql.ScalarAsync<int>("""
            SELECT COALESCE(min(pid), 0) FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND NOT pid = ANY(@except)
            """, new { except = except.ToArray() });

    [Test]
    public async Task Unread_counts_stay_exact_when_members_of_overlapping_conversations_send_concurrently()
    {
        const int perUser = 30;
        var users = await Gateway.CreateUsersAsync(8, "busy");
        var conversations = new[]
        {
            await Gateway.CreateConversationAsync(users[0], users[1], users[2], users[3], users[4]),
            await Gateway.CreateConversationAsync(users[2], users[3], users[4], users[5], users[6], users[7]),
            await Gateway.CreateConversationAsync(users[0], users[4], users[7]),
        };
        // A member who left gets no increments (and writes only to the conversation left to them).
        await Sql.ExecuteAsync("UPDATE conversation_participants SET is_active = false WHERE conversation_id = @c AND user_id = @u",
            new { c = conversations[1], u = users[7].Id });
        var memberships = await Sql.QueryAsync<(long ConversationId, long UserId)>(
            "SELECT conversation_id, user_id FROM conversation_participants WHERE conversation_id = ANY(@conversations) AND is_active", new { conversations });
        var clients = new List<ChatTestClient>();
        foreach (var user in users)
        {
            clients.Add(await ConnectAsync(user));
        }

        // Each user writes round-robin to its conversations, all users at once.
        await Task.WhenAll(users.Select((user, i) => Task.Run(async () =>
        {
            var mine = memberships.Where(p => p.UserId == user.Id).Select(p => p.ConversationId).ToArray();
            for (var n = 0; n < perUser; n++)
            {
                await clients[i].SendAsync(new { type = "message", conversationId = mine[n % mine.Length], clientMessageId = $"u{i}-{n}", content = $"{i}:{n}" });
            }
        })));
        foreach (var client in clients)
        {
            for (var n = 0; n < perUser; n++)
            {
                var answer = await client.NextAsync(f => f.Type() is "ack" or "error", TimeSpan.FromSeconds(30));
                Assert.That(answer.Type(), Is.EqualTo("ack"), answer.ToString());
            }
        }

        var stored = await Sql.QueryAsync<(long ConversationId, long SenderId, long Seq, string Content)>(
            "SELECT conversation_id, sender_id, seq, content FROM messages WHERE conversation_id = ANY(@conversations)", new { conversations });
        Assert.That(stored, Has.Count.EqualTo(users.Length * perUser));
        var participants = await Sql.QueryAsync<(long ConversationId, long UserId, int Unread, bool Active)>(
            "SELECT conversation_id, user_id, unread_count, is_active FROM conversation_participants WHERE conversation_id = ANY(@conversations)", new { conversations });
        foreach (var p in participants)
        {
            var expected = p.Active ? stored.Count(m => m.ConversationId == p.ConversationId && m.SenderId != p.UserId) : 0;
            Assert.That(p.Unread, Is.EqualTo(expected), $"user {p.UserId} in conversation {p.ConversationId}");
        }
        foreach (var conversation in conversations)
        {
            var mine = stored.Where(m => m.ConversationId == conversation).OrderBy(m => m.Seq).ToList();
            Assert.That(mine.Select(m => m.Seq), Is.EqualTo(Enumerable.Range(1, mine.Count).Select(i => (long)i)), $"conversation {conversation} has no gap");
            var row = (await Sql.QueryAsync<(long LastSeq, string Preview, long SenderId)>(
                "SELECT last_seq, last_message_preview, last_message_sender_id FROM conversations WHERE id = @conversation", new { conversation }))[0];
            Assert.That(row, Is.EqualTo(((long)mine.Count, mine[^1].Content, mine[^1].SenderId)), "the preview is the last message");
        }
    }


    private static async Task<(List<JsonElement> Acks, List<JsonElement> Delivered)> ReadAcksAndDeliveriesAsync(ChatTestClient client, int acks, int deliveries)
    {
        var (acked, delivered) = (new List<JsonElement>(), new List<JsonElement>());
        while (acked.Count < acks || delivered.Count < deliveries)
        {
            var frame = await client.NextAsync(f => f.Type() is "ack" or "message" or "error", TimeSpan.FromSeconds(30));
            Assert.That(frame.Type(), Is.Not.EqualTo("error"), frame.ToString());
            (frame.Type() == "ack" ? acked : delivered).Add(frame);
        }
        return (acked, delivered);
    }
}
