using Chat.Core.Messages;
using Chat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Chat.Tests.Messages;

/// <summary>A gateway of its own: the test stops its message writer.</summary>
public sealed class StoppedWriterTests : GatewayTest
{
    // The writer's queue is closed once it has stopped (or died on a bug). A message sent then is neither stored nor
    // acknowledged: the sender must hear so, not wait for an answer that never comes.
    [Test]
    public async Task A_message_sent_after_the_writer_stopped_is_answered_with_a_retryable_error()
    {
        var alice = await Gateway.CreateUserAsync();
        var conversation = await Gateway.CreateConversationAsync(alice, await Gateway.CreateUserAsync());
        var a = await ConnectAsync(alice);
        Assert.That((await a.SendMessageAsync(conversation, "before")).Type(), Is.EqualTo("ack"));

        await Gateway.Services.GetRequiredService<MessageWriter>().StopAsync(CancellationToken.None);

        await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "after-stop", content = "lost?" });
        var answer = await a.TryNextAsync(f => f.Str("clientMessageId") == "after-stop", TimeSpan.FromSeconds(3));
        Assert.That(answer, Is.Not.Null, "the sender got no answer at all");
        Assert.That(answer!.Value.Str("code"), Is.EqualTo("internal"));
    }
}
