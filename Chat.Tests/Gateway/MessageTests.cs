using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

public sealed class MessageTests : GatewayTest
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(400);

    [Test]
    public async Task A_message_is_stored_before_its_ack_and_reaches_the_other_members()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var c = await ConnectAsync(carol);

        var ack = await a.SendMessageAsync(conversation, "hello", "m-1");

        Assert.That(ack.Type(), Is.EqualTo("ack"));
        var stored = await Sql.QueryAsync<(long Id, long Seq, string Content)>(
            "SELECT id, seq, content FROM messages WHERE conversation_id = @conversation", new { conversation });
        Assert.That(stored, Has.Count.EqualTo(1), "the ack names a committed row");
        Assert.That(ack.Long("messageId"), Is.EqualTo(stored[0].Id));
        Assert.That(ack.Long("seq"), Is.EqualTo(1));
        Assert.That(ack.Long("conversationId"), Is.EqualTo(conversation));
        Assert.That(ack.Str("clientMessageId"), Is.EqualTo("m-1"));

        foreach (var receiver in new[] { b, c })
        {
            var message = await receiver.NextAsync("message");
            Assert.That(message.Str("content"), Is.EqualTo("hello"));
            Assert.That(message.Long("seq"), Is.EqualTo(1));
            Assert.That(message.Long("messageId"), Is.EqualTo(stored[0].Id));
            Assert.That(message.Long("senderId"), Is.EqualTo(alice.Id));
            Assert.That(message.Str("senderName"), Is.EqualTo(alice.Name));
            Assert.That(message.Str("messageType"), Is.EqualTo("text"));
            Assert.That(message.Str("clientMessageId"), Is.EqualTo("m-1"));
            Assert.That(message.GetProperty("isCatchup").GetBoolean(), Is.False);
        }
    }

    [Test]
    public async Task The_sender_connection_gets_no_copy_but_the_senders_other_device_does()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var phone = await ConnectAsync(alice);
        var laptop = await ConnectAsync(alice);
        await ConnectAsync(bob);

        await phone.SendMessageAsync(conversation, "from my phone");

        var onLaptop = await laptop.NextAsync("message");
        Assert.That(onLaptop.Str("content"), Is.EqualTo("from my phone"));
        var echoes = await phone.CollectAsync(Quiet, f => f.Type() == "message");
        Assert.That(echoes, Is.Empty, "the sending connection has the ack; it gets no copy");
    }

    [Test]
    public async Task Sequence_numbers_count_one_two_three_per_conversation()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var first = await Gateway.CreateConversationAsync(alice, bob);
        var second = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);

        var seqs = new List<long>();
        foreach (var conversation in new[] { first, second, first, first, second })
        {
            seqs.Add((await a.SendMessageAsync(conversation, "x")).Long("seq"));
        }

        Assert.That(seqs, Is.EqualTo(new long[] { 1, 1, 2, 3, 2 }));
        Assert.That(await Sql.ScalarAsync<long>("SELECT last_seq FROM conversations WHERE id = @first", new { first }), Is.EqualTo(3));
    }

    [Test]
    public async Task Storing_a_message_updates_the_conversation_preview_and_the_others_unread_counts()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        var longText = new string('a', 96) + "😀" + new string('b', 50);

        await a.SendMessageAsync(conversation, "short one");
        await a.SendMessageAsync(conversation, longText);

        var row = (await Sql.QueryAsync<(string Preview, long SenderId)>(
            "SELECT last_message_preview, last_message_sender_id FROM conversations WHERE id = @conversation", new { conversation }))[0];
        Assert.That(row.Preview, Is.EqualTo(new string('a', 96) + "..."), "97 characters would split the emoji's surrogate pair");
        Assert.That(row.SenderId, Is.EqualTo(alice.Id));
        Assert.That(await Sql.UnreadCountAsync(conversation, bob.Id), Is.EqualTo(2));
        Assert.That(await Sql.UnreadCountAsync(conversation, carol.Id), Is.EqualTo(2));
        Assert.That(await Sql.UnreadCountAsync(conversation, alice.Id), Is.EqualTo(0), "the sender's own count does not move");
    }

    [Test]
    public async Task An_inactive_participant_gets_no_unread_increment()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        await Sql.ExecuteAsync("UPDATE conversation_participants SET is_active = false WHERE conversation_id = @conversation AND user_id = @bob",
            new { conversation, bob = bob.Id });
        var a = await ConnectAsync(alice);

        await a.SendMessageAsync(conversation, "anyone?");

        Assert.That(await Sql.UnreadCountAsync(conversation, bob.Id), Is.EqualTo(0));
    }

    [Test]
    public async Task A_non_member_is_denied_with_its_client_message_id_and_nothing_is_stored_or_sent()
    {
        var (alice, bob, mallory) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync("mallory"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var m = await ConnectAsync(mallory);

        var reply = await m.SendMessageAsync(conversation, "let me in", "intrude-1");
        var missing = await m.SendMessageAsync(long.MaxValue, "nobody here", "intrude-2");

        Assert.That(reply.Type(), Is.EqualTo("error"));
        Assert.That(reply.Str("code"), Is.EqualTo("access_denied"));
        Assert.That(reply.Str("clientMessageId"), Is.EqualTo("intrude-1"));
        Assert.That(missing.Str("code"), Is.EqualTo("access_denied"), "a conversation that does not exist looks the same as someone else's");
        Assert.That(await Sql.MessageCountAsync(conversation), Is.Zero);
        Assert.That(await Sql.ScalarAsync<long>("SELECT last_seq FROM conversations WHERE id = @conversation", new { conversation }), Is.Zero);
        Assert.That(await b.CollectAsync(Quiet, f => f.Type() == "message"), Is.Empty);
    }

    [Test]
    public async Task A_reply_must_point_into_the_same_conversation()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var here = await Gateway.CreateConversationAsync(alice, bob);
        var elsewhere = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var original = await a.SendMessageAsync(here, "original");
        var foreign = await a.SendMessageAsync(elsewhere, "foreign");
        await b.CollectAsync(Quiet);

        await a.SendAsync(new { type = "message", conversationId = here, clientMessageId = "r-ok", content = "reply", replyToMessageId = original.Long("messageId") });
        var ok = await a.NextAsync(f => f.Str("clientMessageId") == "r-ok");
        await a.SendAsync(new { type = "message", conversationId = here, clientMessageId = "r-bad", content = "reply", replyToMessageId = foreign.Long("messageId") });
        var bad = await a.NextAsync(f => f.Str("clientMessageId") == "r-bad");

        Assert.That(ok.Type(), Is.EqualTo("ack"));
        var delivered = await b.NextAsync("message");
        Assert.That(delivered.Long("replyToMessageId"), Is.EqualTo(original.Long("messageId")));
        Assert.That(bad.Type(), Is.EqualTo("error"));
        Assert.That(bad.Str("code"), Is.EqualTo("bad_request"));
        Assert.That(await Sql.MessageCountAsync(here), Is.EqualTo(2));
    }

    [Test]
    public async Task Media_messages_carry_their_type_and_url()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);

        await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "img", content = "look", messageType = "image", mediaUrl = "https://cdn.example.com/cat.png" });
        await a.NextAsync("ack");

        var delivered = await b.NextAsync("message");
        Assert.That(delivered.Str("messageType"), Is.EqualTo("image"));
        Assert.That(delivered.Str("mediaUrl"), Is.EqualTo("https://cdn.example.com/cat.png"));
    }

    [Test]
    public async Task A_sequential_retry_gets_the_original_ack_and_stores_and_sends_nothing_again()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);

        var first = await a.SendMessageAsync(conversation, "once", "key-1");
        var retry = await a.SendMessageAsync(conversation, "once", "key-1");

        Assert.That(retry.Type(), Is.EqualTo("ack"));
        Assert.That(retry.Long("messageId"), Is.EqualTo(first.Long("messageId")));
        Assert.That(retry.Long("seq"), Is.EqualTo(first.Long("seq")));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(1));
        Assert.That(await Sql.UnreadCountAsync(conversation, bob.Id), Is.EqualTo(1), "the retry does not count twice");
        var delivered = await b.CollectAsync(Quiet, f => f.Type() == "message");
        Assert.That(delivered, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task Concurrent_retries_from_two_devices_end_with_one_row_and_the_same_ack()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var devices = new List<ChatTestClient>();
        for (var i = 0; i < 6; i++)
        {
            devices.Add(await ConnectAsync(alice));
        }
        var b = await ConnectAsync(bob);

        for (var round = 0; round < 10; round++)
        {
            var key = $"race-{round}";
            var acks = await Task.WhenAll(devices.Select(d => d.SendMessageAsync(conversation, "racing", key)));

            Assert.That(acks.Select(a => a.Type()), Is.All.EqualTo("ack"));
            Assert.That(acks.Select(a => a.Long("messageId")).Distinct().Count(), Is.EqualTo(1), $"round {round}: one message id");
            Assert.That(acks.Select(a => a.Long("seq")).Distinct().Count(), Is.EqualTo(1));
        }

        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(10));
        var seqs = await Sql.QueryAsync<long>("SELECT seq FROM messages WHERE conversation_id = @conversation ORDER BY seq", new { conversation });
        Assert.That(seqs, Is.EqualTo(Enumerable.Range(1, 10).Select(i => (long)i)), "a losing twin gives its seq back: no gaps");
        var delivered = await b.CollectAsync(TimeSpan.FromSeconds(1), f => f.Type() == "message");
        Assert.That(delivered, Has.Count.EqualTo(10));
    }

    [Test]
    public async Task A_resend_of_a_stored_message_gets_its_ack_even_after_the_sender_left_the_conversation()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var first = await a.SendMessageAsync(conversation, "before leaving", "leave-1");
        await b.NextAsync("message");
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        (await http.DeleteAsync($"/api/conversations/{conversation}/members/{alice.ExternalId}")).EnsureSuccessStatusCode();
        await a.NextAsync("member");

        var resend = await a.SendMessageAsync(conversation, "before leaving", "leave-1");
        var fresh = await a.SendMessageAsync(conversation, "after leaving", "leave-2");

        Assert.That(resend.GetRawText(), Is.EqualTo(first.GetRawText()), "the original ack");
        Assert.That((fresh.Type(), fresh.Str("code")), Is.EqualTo(("error", "access_denied")));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(1));
        Assert.That(await b.CollectAsync(Quiet, f => f.Type() == "message"), Is.Empty);
    }

    [Test]
    public async Task A_reply_may_point_at_a_deleted_message()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var original = (await b.SendMessageAsync(conversation, "soon gone")).Long("messageId");
        await b.SendAsync(new { type = "delete", conversationId = conversation, messageId = original });
        await a.NextAsync("messageDeleted");

        await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "re-1", content = "what did you say?", replyToMessageId = original });

        Assert.That((await a.AnswerAsync("re-1")).Type(), Is.EqualTo("ack"));
        Assert.That((await b.NextAsync("message")).Long("replyToMessageId"), Is.EqualTo(original));
    }

    [Test]
    public async Task Two_senders_may_use_the_same_client_message_id()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);

        var fromAlice = await a.SendMessageAsync(conversation, "alice's", "shared-key");
        var fromBob = await b.SendMessageAsync(conversation, "bob's", "shared-key");

        Assert.That(fromBob.Type(), Is.EqualTo("ack"));
        Assert.That(fromBob.Long("messageId"), Is.Not.EqualTo(fromAlice.Long("messageId")));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(2));
    }

    [Test]
    public async Task A_message_without_a_client_message_id_gets_one_from_the_server()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);

        await a.SendAsync(new { type = "message", conversationId = conversation, content = "no key" });
        var ack = await a.NextAsync("ack");

        Assert.That(ack.Str("clientMessageId"), Does.StartWith("srv-"));
        Assert.That(await Sql.ScalarAsync<string>("SELECT client_message_id FROM messages WHERE conversation_id = @conversation", new { conversation }),
            Is.EqualTo(ack.Str("clientMessageId")));
    }

    [Test]
    public async Task Twenty_senders_with_fifty_messages_each_reach_everyone_once_in_seq_order()
    {
        const int senders = 20, perSender = 50, total = senders * perSender;
        var users = await Gateway.CreateUsersAsync(senders, "crowd");
        var conversation = await Gateway.CreateConversationAsync(users);
        var clients = new List<ChatTestClient>();
        foreach (var user in users)
        {
            clients.Add(await ConnectAsync(user));
        }

        // Each sender fires its fifty without waiting; acks and deliveries are collected afterwards.
        await Task.WhenAll(clients.Select((client, i) => Task.Run(async () =>
        {
            for (var n = 0; n < perSender; n++)
            {
                await client.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = $"s{i}-{n}", content = $"{i}:{n}" });
            }
        })));

        await Task.WhenAll(clients.Select(async (client, i) =>
        {
            var acks = 0;
            var received = new List<long>();
            while (acks < perSender || received.Count < total - perSender)
            {
                var frame = await client.NextAsync(f => f.Type() is "ack" or "message" or "error", TimeSpan.FromSeconds(30));
                Assert.That(frame.Type(), Is.Not.EqualTo("error"), frame.ToString());
                if (frame.Type() == "ack")
                {
                    acks++;
                }
                else
                {
                    received.Add(frame.Long("seq"));
                }
            }
            Assert.That(received, Is.Ordered.Ascending, $"client {i} receives in seq order");
            Assert.That(received, Is.Unique, $"client {i} receives each message once");
        }));

        var seqs = await Sql.QueryAsync<long>("SELECT seq FROM messages WHERE conversation_id = @conversation ORDER BY seq", new { conversation });
        Assert.That(seqs, Is.EqualTo(Enumerable.Range(1, total).Select(i => (long)i)), "seq is gap-free");
        var unread = await Sql.QueryAsync<int>("SELECT unread_count FROM conversation_participants WHERE conversation_id = @conversation", new { conversation });
        Assert.That(unread, Is.All.EqualTo(total - perSender), "every participant's unread count is exactly the others' messages");
    }
}
