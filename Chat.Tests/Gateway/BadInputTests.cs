using System.Net.WebSockets;
using System.Text;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

public sealed class BadInputTests : GatewayTest
{
    protected override Dictionary<string, string?> Settings => new() { ["Chat:Limits:MaxFrameBytes"] = "4096" };

    private async Task<(long Conversation, ChatTestClient A, ChatTestClient B)> PairAsync()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        return (conversation, await ConnectAsync(alice), await ConnectAsync(bob));
    }

    private static IEnumerable<TestCaseData> MalformedFrames()
    {
        yield return new TestCaseData("{not json", "bad_request").SetName("Malformed_JSON_gets_bad_request");
        yield return new TestCaseData("", "bad_request").SetName("An_empty_frame_gets_bad_request");
        yield return new TestCaseData("[1,2,3]", "bad_request").SetName("A_non_object_gets_bad_request");
        yield return new TestCaseData("\uFEFF{\"type\":\"presence\",\"presenceStatus\":\"away\"}", "bad_request").SetName("A_frame_starting_with_a_byte_order_mark_gets_bad_request");
        yield return new TestCaseData("{\"conversationId\":1}", "bad_request").SetName("A_missing_type_gets_bad_request");
        yield return new TestCaseData("{\"type\":42}", "bad_request").SetName("A_numeric_type_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"dance\"}", "unknown_type").SetName("An_unknown_type_gets_unknown_type");
        yield return new TestCaseData("{\"type\":\"message\",\"conversationId\":\"1\",\"content\":\"x\"}", "bad_request").SetName("An_id_as_a_string_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"message\",\"conversationId\":1e400,\"content\":\"x\"}", "bad_request").SetName("A_huge_number_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"message\",\"conversationId\":1}", "bad_request").SetName("A_message_without_content_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"message\",\"conversationId\":1,\"content\":\"\"}", "bad_request").SetName("Empty_content_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"message\",\"conversationId\":1,\"content\":\"x\",\"messageType\":\"video\"}", "bad_request").SetName("An_unknown_message_type_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"typing\",\"conversationId\":1,\"isTyping\":\"yes\"}", "bad_request").SetName("A_string_boolean_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"read\",\"conversationId\":1}", "bad_request").SetName("A_read_without_message_id_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"presence\",\"presenceStatus\":\"sleepy\"}", "bad_request").SetName("An_unknown_presence_status_gets_bad_request");
        yield return new TestCaseData(new string('[', 10_000) + new string(']', 10_000), "bad_request").SetName("Ten_thousand_deep_nesting_is_refused_by_size_or_as_bad_request");
    }

    [TestCaseSource(nameof(MalformedFrames))]
    public async Task Malformed_frames_get_an_error_and_the_connection_stays_usable(string frame, string code)
    {
        var (conversation, a, b) = await PairAsync();

        await a.SendTextAsync(frame);

        if (Encoding.UTF8.GetByteCount(frame) > 4096)
        {
            // Past MaxFrameBytes the socket closes with 1009 instead: the frame is never buffered whole.
            await a.WaitClosedAsync();
            Assert.That(a.CloseStatus, Is.EqualTo(WebSocketCloseStatus.MessageTooBig));
            ReliabilityReport.Ledger.BadInput("socket: malformed frames");
            return;
        }
        var error = await a.NextAsync("error");
        Assert.That(error.Str("code"), Is.EqualTo(code));
        Assert.That(error.Str("message"), Is.Not.Empty);
        var ack = await a.SendMessageAsync(conversation, "still here");
        Assert.That(ack.Type(), Is.EqualTo("ack"), "the connection survives a bad frame");
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(1), "nothing from the bad frame was stored");
        Assert.That((await b.NextAsync("message")).Str("content"), Is.EqualTo("still here"));
        ReliabilityReport.Ledger.BadInput("socket: malformed frames");
    }

    [Test]
    public async Task An_error_names_the_client_message_id_of_the_frame_it_refuses()
    {
        var (conversation, a, _) = await PairAsync();

        await a.SendTextAsync($"{{\"type\":\"message\",\"conversationId\":{conversation},\"clientMessageId\":\"c-9\",\"content\":{(new string('x', 4001)).Length}}}");
        var wrongType = await a.NextAsync("error");
        await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "c-10", content = new string('x', 4001) });
        var tooLong = await a.NextAsync("error");

        Assert.That(wrongType.Str("clientMessageId"), Is.EqualTo("c-9"));
        Assert.That(wrongType.Str("message"), Does.Contain("content"));
        Assert.That(tooLong.Str("clientMessageId"), Is.EqualTo("c-10"));
        Assert.That(tooLong.Str("message"), Does.Contain("4000"));
    }

    [Test]
    public async Task A_media_url_with_NUL_is_refused_by_name_and_another_users_message_queued_beside_it_is_stored_and_acked()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var (a, b) = (await ConnectAsync(alice), await ConnectAsync(bob));
        var outsider = await ConnectAsync(await Gateway.CreateUserAsync("outsider"));

        // Bob's message waits for the writer's next batch; Alice's frame comes while it waits. PostgreSQL refuses
        // a NUL in text, and a batch holding one failed whole: Bob got a retryable internal error, for ever.
        Task<System.Text.Json.JsonElement> refused;
        await using (var pause = await WriterPause.StartAsync(Gateway, outsider))
        {
            await b.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "b-1", content = "the good one" });
            await pause.WaitQueuedAsync(1);
            await a.SendAsync(new
            {
                type = "message", conversationId = conversation, clientMessageId = "a-nul", content = "see the picture",
                messageType = "image", mediaUrl = "https://files.example.com/a\u0000b.png",
            });
            refused = a.AnswerAsync("a-nul");
            await Eventually.TrueAsync(() => refused.IsCompleted || pause.Writer.Queued == 2, "Alice's frame is answered or queued");
        }

        var ack = await b.AnswerAsync("b-1");
        Assert.That(ack.Type(), Is.EqualTo("ack"), "a message queued beside the bad one is stored");
        var error = await refused;
        Assert.That((error.Type(), error.Str("code")), Is.EqualTo(("error", "bad_request")));
        Assert.That(error.Str("message"), Does.Contain("mediaUrl"));
        Assert.That(await Sql.QueryAsync<string>("SELECT content FROM messages WHERE conversation_id = @conversation", new { conversation }),
            Is.EqualTo(new[] { "the good one" }));
        Assert.That((await a.SendMessageAsync(conversation, "still here")).Type(), Is.EqualTo("ack"), "the connection survives the refused frame");
        ReliabilityReport.Ledger.BadInput("socket: malformed frames");
    }

    [Test]
    public async Task Script_and_SQL_payloads_are_stored_and_echoed_byte_for_byte()
    {
        var (conversation, a, b) = await PairAsync();
        const string payload = "<script>alert('x')</script> '; DROP TABLE messages; -- \"quoted\" \\ \u00e9\u4e2d\U0001F600\n\ttab";

        await a.SendMessageAsync(conversation, payload);

        Assert.That((await b.NextAsync("message")).Str("content"), Is.EqualTo(payload));
        Assert.That(await Sql.ScalarAsync<string>("SELECT content FROM messages WHERE conversation_id = @conversation", new { conversation }), Is.EqualTo(payload));
    }

    [Test]
    public async Task A_binary_frame_closes_the_socket_with_1003()
    {
        var (_, a, _) = await PairAsync();

        await a.SendBytesAsync([1, 2, 3], WebSocketMessageType.Binary);

        await a.WaitClosedAsync();
        Assert.That(a.CloseStatus, Is.EqualTo(WebSocketCloseStatus.InvalidMessageType));
        Assert.That(a.CloseDescription, Is.EqualTo("binary frames are not supported"));
        ReliabilityReport.Ledger.BadInput("socket: binary frame");
    }

    [Test]
    public async Task Invalid_UTF8_closes_the_socket_with_1007_and_stores_nothing()
    {
        var (conversation, a, _) = await PairAsync();
        var prefix = Encoding.UTF8.GetBytes($"{{\"type\":\"message\",\"conversationId\":{conversation},\"content\":\"");
        byte[] frame = [.. prefix, 0xC3, 0x28, .. "\"}"u8.ToArray()];

        await a.SendBytesAsync(frame, WebSocketMessageType.Text);

        await a.WaitClosedAsync();
        Assert.That(a.CloseStatus, Is.EqualTo(WebSocketCloseStatus.InvalidPayloadData));
        Assert.That(a.CloseDescription, Is.EqualTo("invalid UTF-8"));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.Zero);
        ReliabilityReport.Ledger.BadInput("socket: invalid UTF-8");
    }

    [Test]
    public async Task Invalid_UTF8_at_the_end_of_a_fragmented_message_closes_the_socket_with_1007_and_its_reason()
    {
        var (conversation, a, _) = await PairAsync();
        var json = Encoding.UTF8.GetBytes($"{{\"type\":\"message\",\"conversationId\":{conversation},\"content\":\"caf\"}}");

        // Each fragment is valid on its own; the message ends in the middle of a two-byte character.
        await a.SendBytesAsync(json, WebSocketMessageType.Text, endOfMessage: false);
        await a.SendBytesAsync([0xC3], WebSocketMessageType.Text, endOfMessage: true);

        await a.WaitClosedAsync();
        Assert.That((a.CloseStatus, a.CloseDescription), Is.EqualTo((WebSocketCloseStatus.InvalidPayloadData, "invalid UTF-8")));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.Zero);
        ReliabilityReport.Ledger.BadInput("socket: invalid UTF-8");
    }

    [Test]
    public async Task A_close_with_a_reserved_code_is_answered_with_1002_and_its_reason()
    {
        var (_, a, _) = await PairAsync();

        await a.CloseAsync(ChatTestClient.ReservedCloseCode);

        Assert.That((a.CloseStatus, a.CloseDescription), Is.EqualTo((WebSocketCloseStatus.ProtocolError, "WebSocket protocol error")));
        ReliabilityReport.Ledger.BadInput("socket: WebSocket protocol error");
    }

    [Test]
    public async Task An_oversize_frame_closes_the_socket_with_1009_and_stores_nothing()
    {
        var (conversation, a, _) = await PairAsync();

        await a.SendAsync(new { type = "message", conversationId = conversation, content = new string('x', 5000) });

        await a.WaitClosedAsync();
        Assert.That(a.CloseStatus, Is.EqualTo(WebSocketCloseStatus.MessageTooBig));
        Assert.That(a.CloseDescription, Is.EqualTo("frame too large"));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.Zero);
        ReliabilityReport.Ledger.BadInput("socket: oversize message, whole or in fragments");
    }

    [Test]
    public async Task An_oversize_message_split_into_small_fragments_closes_the_socket_with_1009()
    {
        var (conversation, a, _) = await PairAsync();
        var fragment = Encoding.UTF8.GetBytes(new string(' ', 1000));

        // A JSON object that would be valid if it ever ended: only the size gives it away.
        await a.SendBytesAsync(Encoding.UTF8.GetBytes($"{{\"type\":\"message\",\"conversationId\":{conversation},\"content\":\"x\""), WebSocketMessageType.Text, endOfMessage: false);
        try
        {
            for (var i = 0; i < 10; i++)
            {
                await a.SendBytesAsync(fragment, WebSocketMessageType.Text, endOfMessage: false);
            }
        }
        catch (WebSocketException)
        {
            // The server may close before every fragment is out.
        }

        await a.WaitClosedAsync();
        Assert.That(a.CloseStatus, Is.EqualTo(WebSocketCloseStatus.MessageTooBig));
        Assert.That(a.CloseDescription, Is.EqualTo("frame too large"));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.Zero);
        ReliabilityReport.Ledger.BadInput("socket: oversize message, whole or in fragments");
    }

    [Test]
    public async Task A_frame_split_into_fragments_within_the_limit_is_accepted()
    {
        var (conversation, a, b) = await PairAsync();
        var json = Encoding.UTF8.GetBytes($"{{\"type\":\"message\",\"conversationId\":{conversation},\"clientMessageId\":\"frag\",\"content\":\"in pieces\"}}");

        for (var i = 0; i < json.Length; i += 7)
        {
            await a.SendBytesAsync(json[i..Math.Min(i + 7, json.Length)], WebSocketMessageType.Text, endOfMessage: i + 7 >= json.Length);
        }

        Assert.That((await a.NextAsync("ack")).Str("clientMessageId"), Is.EqualTo("frag"));
        Assert.That((await b.NextAsync("message")).Str("content"), Is.EqualTo("in pieces"));
    }

    [Test]
    public async Task A_thousand_random_conversation_ids_from_a_non_member_store_and_deliver_nothing()
    {
        var (conversation, a, b) = await PairAsync();
        var mallory = await ConnectAsync(await Gateway.CreateUserAsync("mallory"));
        var random = new Random(7);
        var before = await Sql.ScalarAsync<long>("SELECT count(*) FROM messages");

        for (var i = 0; i < 1000; i++)
        {
            var target = i % 10 == 0 ? conversation : random.NextInt64(1, long.MaxValue);
            await mallory.SendAsync(new { type = "message", conversationId = target, clientMessageId = $"x{i}", content = "spam" });
        }
        var answers = 0;
        while (answers < 1000)
        {
            var frame = await mallory.NextAsync(f => f.Type() is "error" or "ack");
            Assert.That(frame.Str("code"), Is.EqualTo("access_denied"), frame.ToString());
            answers++;
        }

        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM messages"), Is.EqualTo(before));
        Assert.That(await b.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() == "message"), Is.Empty);
        Assert.That((await a.SendMessageAsync(conversation, "members still fine")).Type(), Is.EqualTo("ack"));
        ReliabilityReport.Ledger.BadInput("socket: messages to random conversation ids from a non-member", 1000);
        ReliabilityReport.Ledger.Messages("non-member writing to random conversations", 1000, 0, 0, 0, 0, 0);
    }
}
