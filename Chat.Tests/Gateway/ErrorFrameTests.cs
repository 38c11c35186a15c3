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
}
