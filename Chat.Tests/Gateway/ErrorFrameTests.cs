using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

public sealed class ErrorFrameTests : GatewayTest
{
    [Test]
    public async Task Errors_name_the_frame_they_answer_so_a_client_with_several_requests_out_can_tell_them_apart()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var ours = await Gateway.CreateConversationAsync(alice, bob);
        var theirs = await Gateway.CreateConversationAsync(bob, carol);
        var a = await ConnectAsync(alice);
        var ack = await a.SendMessageAsync(ours, "mine");

        await a.SendAsync(new { type = "sync", conversationId = ours, afterSeq = 0 });
        await a.SendAsync(new { type = "sync", conversationId = theirs, afterSeq = 0 });
        await a.SendAsync(new { type = "edit", conversationId = ours, messageId = ack.Long("messageId") + 1_000_000, content = "x" });
        await a.SendAsync(new { type = "typing", conversationId = theirs });
        await a.SendAsync(new { type = "read", conversationId = ours, messageId = "soon" });
        var errors = new List<System.Text.Json.JsonElement>();
        while (errors.Count < 4)
        {
            errors.Add(await a.NextAsync("error"));
        }

        Assert.That(errors.Select(e => (e.Str("code"), e.Str("frameType"), e.Long("conversationId"))), Is.EqualTo(new[]
        {
            ("access_denied", "sync", theirs),
            ("not_found", "edit", ours),
            ("access_denied", "typing", theirs),
            ("bad_request", "read", ours),
        }));
        Assert.That(errors[1].Long("messageId"), Is.EqualTo(ack.Long("messageId") + 1_000_000));
        Assert.That(errors.Where((_, i) => i != 1).Select(e => e.TryGetProperty("messageId", out _)), Is.All.False);
    }

    [Test]
    public async Task An_error_names_only_the_fields_that_its_frame_type_defines()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var ours = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);

        // Each frame carries fields its type does not define: the server ignores them, so its errors must not
        // name them either, or a client would take the error for an answer about that conversation or message.
        await a.SendAsync(new { type = "presence", presenceStatus = "asleep", conversationId = ours, messageId = 5, clientMessageId = "k-1" });
        await a.SendAsync(new { type = "shout", conversationId = ours, messageId = 5, clientMessageId = "k-2" });
        await a.SendAsync(new { type = "typing", conversationId = ours, isTyping = "yes", messageId = 5, clientMessageId = "k-3" });
        await a.SendAsync(new { type = "message", conversationId = ours, clientMessageId = "k-4", content = "", messageId = 5 });
        var errors = new List<System.Text.Json.JsonElement>();
        while (errors.Count < 4)
        {
            errors.Add(await a.NextAsync("error"));
        }

        Assert.That(errors.Select(e => (e.Str("code"), e.Str("frameType"), Named(e, "conversationId"), e.Str("clientMessageId"))), Is.EqualTo(new (string?, string?, long?, string?)[]
        {
            ("bad_request", "presence", null, null),
            ("unknown_type", null, null, null),
            ("bad_request", "typing", ours, null),
            ("bad_request", "message", ours, "k-4"),
        }));
        Assert.That(errors.Select(e => e.TryGetProperty("messageId", out _)), Is.All.False);
    }

    [Test]
    public async Task A_type_is_matched_case_sensitively_and_a_differently_cased_one_is_unknown_and_names_nothing()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var ours = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);

        await a.SendAsync(new { type = "Message", conversationId = ours, clientMessageId = "k-1", content = "hello" });
        await a.SendAsync(new { type = "TYPING", conversationId = ours });
        await a.SendAsync(new { type = "message ", conversationId = ours, clientMessageId = "k-2", content = "hello" });
        var errors = new List<System.Text.Json.JsonElement>();
        while (errors.Count < 3)
        {
            errors.Add(await a.NextAsync("error"));
        }

        Assert.That(errors.Select(e => e.Str("code")), Is.All.EqualTo("unknown_type"));
        Assert.That(errors.Select(e => e.TryGetProperty("frameType", out _) || e.TryGetProperty("conversationId", out _) || e.TryGetProperty("clientMessageId", out _)),
            Is.All.False);
        Assert.That(await b.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() is "message" or "typing"), Is.Empty);
        Assert.That(await Sql.MessageCountAsync(ours), Is.Zero);
    }

    [Test]
    public async Task Unknown_fields_are_ignored_even_when_they_differ_from_known_ones_only_by_case()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var ours = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);

        await a.SendTextAsync($$$"""{"type":"message","conversationId":{{{ours}}},"clientMessageId":"k-1","content":"hello","Type":"typing","CONTENT":5,"conversationID":"x","extra":{"nested":[1,{"a":null}]}}""");

        Assert.That((await a.AnswerAsync("k-1")).Type(), Is.EqualTo("ack"));
        Assert.That((await b.NextAsync("message")).Str("content"), Is.EqualTo("hello"));
    }

    [Test]
    public async Task An_error_found_while_handling_a_message_sent_without_a_key_carries_the_key_the_server_made()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var ours = await Gateway.CreateConversationAsync(alice, bob);
        var theirs = await Gateway.CreateConversationAsync(bob, carol);
        var a = await ConnectAsync(alice);
        var foreign = await ConnectAsync(bob);
        var elsewhere = (await foreign.SendMessageAsync(theirs, "elsewhere")).Long("messageId");

        await a.SendAsync(new { type = "message", conversationId = theirs, content = "not a member" });
        var denied = await a.NextAsync("error");
        await a.SendAsync(new { type = "message", conversationId = ours, content = "bad reply", replyToMessageId = elsewhere });
        var badReply = await a.NextAsync("error");
        await a.SendAsync(new { type = "message", conversationId = ours, content = "" });
        var unread = await a.NextAsync("error");

        Assert.That((denied.Str("code"), badReply.Str("code"), unread.Str("code")), Is.EqualTo(("access_denied", "bad_request", "bad_request")));
        Assert.That(denied.Str("clientMessageId"), Does.Match("^srv-[0-9a-f]{32}$"));
        Assert.That(badReply.Str("clientMessageId"), Does.Match("^srv-[0-9a-f]{32}$"));
        Assert.That(denied.Str("clientMessageId"), Is.Not.EqualTo(badReply.Str("clientMessageId")));
        Assert.That(unread.TryGetProperty("clientMessageId", out _), Is.False, "a frame refused when read was given no key");
    }

    private static long? Named(System.Text.Json.JsonElement error, string field) =>
        error.TryGetProperty(field, out var value) ? value.GetInt64() : null;
}
