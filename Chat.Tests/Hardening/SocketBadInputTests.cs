using System.Text;
using Chat.Tests.Infrastructure;
using CsCheck;

namespace Chat.Tests.Hardening;

/// <summary>
/// Bad input over a real socket at the default frame size, beyond what <c>Gateway/BadInputTests</c> covers with
/// its small frames: deep nesting that reaches the parser, awkward numbers and ids in every id field, payloads
/// echoed byte for byte everywhere they come back, and thousands of generated frames from a non-member.
/// </summary>
public sealed class SocketBadInputTests : GatewayTest
{
    private async Task<(long Conversation, ChatTestClient A, ChatTestClient B, TestUser Bob)> PairAsync()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        return (conversation, await ConnectAsync(alice), await ConnectAsync(bob), bob);
    }

    private static IEnumerable<TestCaseData> RefusedFrames()
    {
        yield return new TestCaseData(new string('[', 10_000) + new string(']', 10_000)).SetName("Ten_thousand_nested_arrays_within_the_size_limit_get_bad_request");
        yield return new TestCaseData("{\"type\":\"message\",\"x\":" + string.Concat(Enumerable.Repeat("{\"a\":", 9_999)) + "1" + new string('}', 9_999) + "}")
            .SetName("Ten_thousand_nested_objects_get_bad_request");
        foreach (var number in new[] { "9223372036854775808", "-1", "0", "1.5", "1e2", "-9223372036854775808", new string('9', 10_000) })
        {
            yield return new TestCaseData($"{{\"type\":\"message\",\"conversationId\":{number},\"content\":\"x\"}}").SetName($"A_conversation_id_of_{(number.Length > 20 ? "ten_thousand_digits" : number.Replace("-", "minus_").Replace(".", "_"))}_gets_bad_request");
        }
        yield return new TestCaseData("{\"type\":\"message\",\"conversationId\":1,\"content\":\"x\",\"replyToMessageId\":\"5\"}").SetName("A_reply_id_as_a_string_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"read\",\"conversationId\":1,\"messageId\":\"5\"}").SetName("A_message_id_as_a_string_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"typing\",\"conversationId\":\"1\"}").SetName("A_typing_conversation_id_as_a_string_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"read\",\"conversationId\":1,\"messageId\":1e400}").SetName("A_huge_message_id_gets_bad_request");
        yield return new TestCaseData("{\"\\ud800\":null,\"type\":\"message\"}").SetName("A_property_name_with_a_lone_surrogate_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"message\",\"conversationId\":1,\"content\":\"\\ud800\"}").SetName("Content_with_a_lone_surrogate_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"message\",\"conversationId\":1,\"content\":\"a\\u0000b\"}").SetName("Content_with_NUL_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"message\",\"conversationId\":1,\"content\":\"x\",\"mediaUrl\":\"https://files.example.com/a\\u0000b.png\"}").SetName("A_media_url_with_NUL_gets_bad_request");
        yield return new TestCaseData("{\"type\":\"edit\",\"conversationId\":1,\"messageId\":1,\"content\":\"a\\u0000b\"}").SetName("Edit_content_with_NUL_gets_bad_request");
    }

    [TestCaseSource(nameof(RefusedFrames))]
    public async Task Refused_frames_store_nothing_and_leave_the_connection_usable(string frame)
    {
        var (conversation, a, b, _) = await PairAsync();

        await a.SendTextAsync(frame);
        var error = await a.NextAsync("error");
        var ack = await a.SendMessageAsync(conversation, "still here");

        Assert.That(error.Str("code"), Is.EqualTo("bad_request"));
        Assert.That(ack.Type(), Is.EqualTo("ack"));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(1));
        Assert.That((await b.NextAsync("message")).Str("content"), Is.EqualTo("still here"));
        ReliabilityReport.Ledger.BadInput("socket: deep nesting, awkward numbers, ids as strings, invalid text");
    }

    private static readonly string[] Payloads =
    [
        "<script>alert(document.cookie)</script>",
        "<img src=x onerror=alert(1)>",
        "javascript:alert(1)",
        "'; DROP TABLE messages; --",
        "\" OR 1=1 --",
        "Robert'); DELETE FROM user_profiles WHERE ('a'='a",
        "$1; SELECT pg_sleep(10)",
        "{{7*7}} ${7*7} <%= 7*7 %>",
        "\\u0000 is not NUL here, \\\" neither",
        "tab\tnew line\ncarriage\rback\\slash \"quotes\"",
        "\u202Eright-to-left override\u202C and zero\u200Bwidth",
        "\U0001F600\U0001F469\u200D\U0001F4BB family \U0001F468\u200D\U0001F469\u200D\U0001F467",
        "\u00e9\u0301 combining, \uFEFF BOM, \uFFFF nonchar",
        "</script><script>alert('x')</script>",
        new string('\'', 4000),
    ];

    [Test]
    public async Task SQL_and_script_payloads_are_stored_and_echoed_byte_for_byte_everywhere()
    {
        var (conversation, a, b, bob) = await PairAsync();

        foreach (var (payload, i) in Payloads.Select((p, i) => (p, i)))
        {
            var key = "<b>key</b>'" + i;
            var ack = await a.SendMessageAsync(conversation, payload, key);
            var live = await b.NextAsync("message");
            var stored = await Sql.ScalarAsync<string>("SELECT content FROM messages WHERE id = @id", new { id = ack.Long("messageId") });

            Assert.That(ack.Str("clientMessageId"), Is.EqualTo(key));
            Assert.That(live.Str("content"), Is.EqualTo(payload));
            Assert.That(live.Str("clientMessageId"), Is.EqualTo(key));
            Assert.That(Encoding.UTF8.GetBytes(stored), Is.EqualTo(Encoding.UTF8.GetBytes(payload)), "stored byte for byte");
        }
        await using var again = await Gateway.ConnectAsync(bob);

        Assert.That(again.Catchup.Select(m => m.Str("content")), Is.EqualTo(Payloads), "catch-up echoes them byte for byte too");
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM user_profiles"), Is.Positive, "the tables are all there");
        ReliabilityReport.Ledger.BadInput("socket: SQL and script payloads echoed byte for byte", Payloads.Length);
    }

    [Test]
    public async Task Thousands_of_generated_frames_from_a_non_member_store_nothing_deliver_nothing_and_keep_the_socket_open()
    {
        var (conversation, a, b, _) = await PairAsync();
        var mallory = await ConnectAsync(await Gateway.CreateUserAsync("mallory"));
        var before = await Sql.ScalarAsync<long>("SELECT count(*) FROM messages");
        // Under the frame size limit: what is over it closes the socket, which BadInputTests shows.
        var frames = FrameReaderPropertyTests.AnyJson.Where(f => Encoding.UTF8.GetByteCount(f) < 60_000).Array[3_000].Single();

        foreach (var frame in frames)
        {
            await mallory.SendTextAsync(frame);
        }
        await mallory.SendTextAsync("{\"type\":\"sentinel\"}");
        var answers = new List<System.Text.Json.JsonElement>();
        while (true)
        {
            var frame = await mallory.NextAsync();
            if (frame.Type() == "error" && frame.Str("message")!.Contains("sentinel"))
            {
                break;
            }
            answers.Add(frame);
        }

        Assert.That(mallory.State, Is.EqualTo(System.Net.WebSockets.WebSocketState.Open), "garbage never costs the sender its socket");
        Assert.That(answers.Select(f => f.Type()), Is.All.EqualTo("error"), "a non-member gets errors and nothing else");
        Assert.That(answers.Select(f => f.Str("code")), Is.All.AnyOf("bad_request", "unknown_type", "access_denied"));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM messages"), Is.EqualTo(before), "0 stored");
        Assert.That(await b.CollectAsync(TimeSpan.FromMilliseconds(300)), Is.Empty, "0 delivered to the members");
        Assert.That((await a.SendMessageAsync(conversation, "members unaffected")).Type(), Is.EqualTo("ack"));
        ReliabilityReport.Ledger.BadInput("socket: generated frames from a non-member", frames.Length);
    }
}
