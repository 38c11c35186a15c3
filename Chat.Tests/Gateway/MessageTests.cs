using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

public sealed class MessageTests : GatewayTest
{
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
}
