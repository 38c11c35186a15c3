using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

/// <summary>
/// The <c>read</c> frame that reaches the reader's own other devices carries their unread count after the move
/// (protocol §6.6, §10): a device that does not hold every message (<c>hasMore</c>, <c>?catchup=false</c>) cannot
/// count it. The count is the reader's business only: the frame the other members get has none.
/// </summary>
public sealed class OwnDeviceUnreadCountTests : GatewayTest
{
    private sealed record Group(TestUser Alice, TestUser Bob, TestUser Carol, long Conversation, ChatTestClient Phone, ChatTestClient B, ChatTestClient C, List<long> Ids);

    /// <summary>
    /// m1 to m8 from Bob, Carol and Alice's phone in turn (m3 and m7 are Alice's), and Carol's m5 deleted: what Alice
    /// has left to read after a message is never simply "the messages after it".
    /// </summary>
    private async Task<Group> MixedMessagesAsync()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var phone = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var c = await ConnectAsync(carol);
        var senders = new[] { b, c, phone, b, c, b, phone, c };
        var ids = new List<long>();
        for (var i = 0; i < senders.Length; i++)
        {
            ids.Add((await senders[i].SendMessageAsync(conversation, $"m{i + 1}")).Long("messageId"));
        }
        await c.SendAsync(new { type = "delete", conversationId = conversation, messageId = ids[4] });
        await c.NextAsync("messageDeleted");
        return new Group(alice, bob, carol, conversation, phone, b, c, ids);
    }

    [Test]
    public async Task Another_device_of_the_reader_gets_the_unread_count_the_read_left_exactly()
    {
        var g = await MixedMessagesAsync();
        // Connected without catch-up, the laptop holds none of the messages and could not count them.
        var laptop = await ConnectAsync(g.Alice, catchup: false);
        Assert.That(laptop.Ready.GetProperty("conversations")[0].GetProperty("hasMore").GetBoolean(), Is.True);

        // After m2: m4, m6, m8 (m3 and m7 are hers, m5 is deleted). After m4: m6, m8. After her own m7: m8.
        foreach (var (read, expected) in new[] { (1, 3), (3, 2), (6, 1) })
        {
            await g.Phone.SendAsync(new { type = "read", conversationId = g.Conversation, messageId = g.Ids[read] });

            var receipt = await laptop.NextAsync("read");
            Assert.That((receipt.Long("senderId"), receipt.Long("messageId"), receipt.Long("seq")), Is.EqualTo((g.Alice.Id, g.Ids[read], (long)read + 1)));
            Assert.That(receipt.TryGetProperty("unreadCount", out var count), Is.True, $"the laptop is told Alice's count after m{read + 1}");
            Assert.That(count.GetInt32(), Is.EqualTo(expected), $"after m{read + 1}");
        }
    }

    [Test]
    public async Task The_other_members_get_the_readers_new_position_without_her_count()
    {
        var g = await MixedMessagesAsync();
        var laptop = await ConnectAsync(g.Alice);

        await g.Phone.SendAsync(new { type = "read", conversationId = g.Conversation, messageId = g.Ids[1] });

        Assert.That((await laptop.NextAsync("read")).TryGetProperty("unreadCount", out _), Is.True, "her own device gets it");
        foreach (var other in new[] { g.B, g.C })
        {
            var receipt = await other.NextAsync("read");
            Assert.That((receipt.Long("senderId"), receipt.Long("messageId")), Is.EqualTo((g.Alice.Id, g.Ids[1])));
            Assert.That(receipt.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "type", "conversationId", "messageId", "seq", "senderId", "timestamp" }),
                "Alice's unread count is hers: the others' frame does not carry it");
        }
    }

    [Test]
    public async Task The_count_a_device_is_told_is_the_stored_one_and_what_the_next_ready_says()
    {
        var g = await MixedMessagesAsync();
        var laptop = await ConnectAsync(g.Alice, catchup: false);

        await g.Phone.SendAsync(new { type = "read", conversationId = g.Conversation, messageId = g.Ids[2] });

        var told = (await laptop.NextAsync("read")).GetProperty("unreadCount").GetInt32();
        Assert.That(told, Is.EqualTo(await Sql.UnreadCountAsync(g.Conversation, g.Alice.Id)), "the count stored with the position");
        Assert.That(told, Is.EqualTo(await UnreadByDefinitionAsync(g.Conversation, g.Alice.Id, g.Ids[2])));
        var tablet = await ConnectAsync(g.Alice, catchup: false);
        Assert.That(tablet.Ready.GetProperty("conversations")[0].GetProperty("unreadCount").GetInt32(), Is.EqualTo(told), "the next ready says the same");
    }

    // Two devices read at once while a third only watches. Their receipts take effect one after the other; each
    // device is told every move it did not make, with the count that move left, in the order they took effect. So
    // the watcher, and the device whose read was not the last to move the position, end with the stored position and
    // count; the other one made that last move itself.
    [Test]
    public async Task Devices_reading_at_once_are_each_told_the_count_of_every_move_and_end_with_the_stored_one()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        // 300 messages from Bob, Carol and Alice in turn, every seventh deleted.
        var ids = (await Sql.QueryAsync<long>("""
            INSERT INTO messages (conversation_id, seq, sender_id, content, client_message_id, is_deleted, deleted_at)
            SELECT @Conversation, s, (ARRAY[@Bob, @Carol, @Alice])[s % 3 + 1], 'm' || s, 'fill-' || s, s % 7 = 0, CASE WHEN s % 7 = 0 THEN now() END
            FROM generate_series(1, @Count) AS s
            RETURNING id;
            UPDATE conversations SET last_seq = @Count WHERE id = @Conversation;
            """, new { Conversation = conversation, Bob = bob.Id, Carol = carol.Id, Alice = alice.Id, Count = 300 })).Order().ToList();
        var expected = (await Sql.QueryAsync<(long Id, int Unread)>("""
            SELECT m.id, (SELECT count(*)::int FROM messages o
                          WHERE o.conversation_id = m.conversation_id AND o.seq > m.seq AND o.sender_id <> @Alice AND NOT o.is_deleted)
            FROM messages m WHERE m.conversation_id = @Conversation
            """, new { Conversation = conversation, Alice = alice.Id })).ToDictionary(r => r.Id, r => r.Unread);
        var phone = await ConnectAsync(alice, catchup: false);
        var laptop = await ConnectAsync(alice, catchup: false);
        var watcher = await ConnectAsync(alice, catchup: false);
        // The phone reads up to the 239th message, the laptop up to the 240th: the laptop's last read is the last move.
        var last = ids[239];

        await Task.WhenAll(
            SendReadsAsync(phone, ids.Take(240).Where((_, i) => i % 2 == 0)),
            SendReadsAsync(laptop, ids.Take(240).Where((_, i) => i % 2 == 1)));

        var watched = await ReceiptsAsync(watcher, f => f.Long("messageId") == last);
        // Every move was told to every device before the next one took effect: what a device had queued for it is in
        // once its own frames are answered.
        var toPhone = await ReceiptsThroughBarrierAsync(phone);
        var toLaptop = await ReceiptsThroughBarrierAsync(laptop);

        var stored = await Sql.UnreadCountAsync(conversation, alice.Id);
        Assert.That(await Sql.ScalarAsync<long>(
            "SELECT last_read_message_id FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @alice",
            new { conversation, alice = alice.Id }), Is.EqualTo(last), "the position ends at the latest message either device read");
        Assert.That(stored, Is.EqualTo(expected[last]));
        foreach (var (device, receipts) in new[] { ("watcher", watched), ("phone", toPhone), ("laptop", toLaptop) })
        {
            Assert.That(receipts.Select(r => r.Long("messageId")), Is.Ordered.Ascending.And.Unique, $"the {device} saw the position step back");
            Assert.That(receipts.Where(r => r.GetProperty("unreadCount").GetInt32() != expected[r.Long("messageId")]).Select(r => r.GetRawText()), Is.Empty,
                $"receipts to the {device} whose count is not the one their move left");
        }
        Assert.That((watched[^1].Long("messageId"), watched[^1].GetProperty("unreadCount").GetInt32()), Is.EqualTo((last, stored)));
        Assert.That((toPhone[^1].Long("messageId"), toPhone[^1].GetProperty("unreadCount").GetInt32()), Is.EqualTo((last, stored)),
            "the phone's last read was overtaken by the laptop's");
        Assert.That(toLaptop.Select(r => r.Long("messageId")), Has.None.EqualTo(last), "the laptop is not told of its own read");

        async Task SendReadsAsync(ChatTestClient device, IEnumerable<long> messageIds)
        {
            foreach (var id in messageIds)
            {
                await device.SendAsync(new { type = "read", conversationId = conversation, messageId = id });
            }
        }

        async Task<List<JsonElement>> ReceiptsThroughBarrierAsync(ChatTestClient device)
        {
            await device.SendAsync(new { type = "sync", conversationId = conversation, afterSeq = long.MaxValue / 2, limit = 1 });
            return await ReceiptsAsync(device, f => f.Type() == "synced");
        }

        // The receipts about Alice up to and with the frame that ends the wait (a synced frame is not kept).
        async Task<List<JsonElement>> ReceiptsAsync(ChatTestClient device, Func<JsonElement, bool> end)
        {
            var receipts = new List<JsonElement>();
            while (true)
            {
                var frame = await device.NextAsync(f => f.Type() is "read" or "synced");
                if (frame.Type() == "read")
                {
                    Assert.That(frame.Long("senderId"), Is.EqualTo(alice.Id));
                    receipts.Add(frame);
                }
                if (end(frame))
                {
                    return receipts;
                }
            }
        }
    }

    // Round after round, Bob sends, Carol deletes her message from just before, and Alice's phone reads, all at
    // once: each message and deletion is stored on either side of the receipt and reaches the laptop on either side
    // of its frame. A laptop that takes each count and then counts only what lies above the frame's lastSeq and
    // lastChangeSeq (protocol §10) holds the stored count after every round.
    [Test]
    public async Task A_device_that_counts_from_the_positions_the_count_was_taken_at_stays_exact_while_messages_race_the_reads()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var phone = await ConnectAsync(alice, catchup: false);
        var laptop = await ConnectAsync(alice, catchup: false);
        var b = await ConnectAsync(bob);
        var c = await ConnectAsync(carol);
        var model = new OwnCountModel(alice.Id);
        var wrong = new List<string>();
        var toRead = (await b.SendMessageAsync(conversation, "first")).Long("messageId");

        for (var round = 0; round < 150; round++)
        {
            var carols = (await c.SendMessageAsync(conversation, $"c{round}")).Long("messageId");
            var key = $"b{round}";
            await Task.WhenAll(
                b.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = key, content = key }),
                c.SendAsync(new { type = "delete", conversationId = conversation, messageId = carols }),
                phone.SendAsync(new { type = "read", conversationId = conversation, messageId = toRead }));
            var bobs = (await b.NextAsync(f => f.Type() == "ack" && f.Str("clientMessageId") == key)).Long("messageId");
            await c.NextAsync(f => f.Type() == "messageDeleted" && f.Long("messageId") == carols);

            var (sawMessage, sawDeletion, sawRead) = (false, false, false);
            while (!(sawMessage && sawDeletion && sawRead))
            {
                var frame = await laptop.NextAsync(f => f.Type() is "message" or "messageDeleted" or "read");
                await model.ApplyAsync(frame);
                sawMessage |= frame.Type() == "message" && frame.Long("messageId") == bobs;
                sawDeletion |= frame.Type() == "messageDeleted" && frame.Long("messageId") == carols;
                sawRead |= frame.Type() == "read" && frame.Long("messageId") == toRead;
            }
            var stored = await Sql.UnreadCountAsync(conversation, alice.Id);
            if (model.Count != stored)
            {
                wrong.Add($"round {round}: the laptop counts {model.Count}, {stored} stored");
                model.Correct(stored);
            }
            toRead = bobs;
        }

        Assert.That(wrong, Is.Empty);
    }

    /// <summary>
    /// A client's unread count in one conversation, kept by the rules of protocol §10: the latest counted
    /// <c>read</c> frame's count, plus the messages from others after the read position above its <c>lastSeq</c>,
    /// less the deletions of such messages above its <c>lastChangeSeq</c>, whether they came before the frame or after.
    /// </summary>
    private sealed class OwnCountModel(long userId)
    {
        private readonly List<long> _messageSeqs = [];
        private readonly List<(long Seq, long ChangeSeq)> _deletions = [];
        private (int Count, long ReadSeq, long LastSeq, long LastChangeSeq)? _read;
        private int _correction;

        public int? Count => _read is { } r
            ? r.Count + _correction
              + _messageSeqs.Count(seq => seq > r.ReadSeq && seq > r.LastSeq)
              - _deletions.Count(d => d.Seq > r.ReadSeq && d.ChangeSeq > r.LastChangeSeq)
            : null;

        /// <summary>Takes the stored count as the model's, so that one wrong round does not make the next ones wrong.</summary>
        public void Correct(int stored) => _correction += stored - (Count ?? stored);

        public async Task ApplyAsync(JsonElement frame)
        {
            switch (frame.Type())
            {
                case "message" when frame.Long("senderId") != userId:
                    _messageSeqs.Add(frame.Long("seq"));
                    break;
                case "messageDeleted" when frame.Long("senderId") != userId:
                    _deletions.Add((frame.Long("seq"), frame.Long("changeSeq")));
                    break;
                case "read" when frame.Long("senderId") == userId:
                    var readSeq = await Sql.ScalarAsync<long>("SELECT seq FROM messages WHERE id = @id", new { id = frame.Long("messageId") });
                    _read = (frame.GetProperty("unreadCount").GetInt32(), readSeq, frame.Long("lastSeq"), frame.Long("lastChangeSeq"));
                    _correction = 0;
                    break;
            }
        }
    }

    private static Task<int> UnreadByDefinitionAsync(long conversation, long user, long readMessageId) => Sql.ScalarAsync<int>("""
        SELECT count(*)::int FROM messages m
        WHERE m.conversation_id = @conversation AND m.sender_id <> @user AND NOT m.is_deleted
          AND m.seq > (SELECT seq FROM messages WHERE id = @readMessageId)
        """, new { conversation, user, readMessageId });
}
