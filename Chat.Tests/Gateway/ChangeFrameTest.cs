using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

/// <summary>
/// Base for tests of the frames whose database work is not a message's: Alice and Bob share a conversation, each has
/// sent a message to it, and Alice is about to send a <c>sync</c>, <c>read</c> (of Bob's message), <c>edit</c> or
/// <c>delete</c> (of her own).
/// </summary>
public abstract class ChangeFrameTest : GatewayTest
{
    protected sealed record Scene(TestUser Alice, ChatTestClient A, ChatTestClient B, long Conversation, JsonElement FromBob, JsonElement Own, object Frame);

    protected async Task<Scene> SetUpAsync(string type)
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        var fromBob = await b.SendMessageAsync(conversation, "from bob");
        var a = await ConnectAsync(alice);
        var own = await a.SendMessageAsync(conversation, "from alice");
        await b.NextAsync("message");
        object frame = type switch
        {
            "sync" => new { type, conversationId = conversation, afterSeq = 0 },
            "read" => new { type, conversationId = conversation, messageId = fromBob.Long("messageId") },
            "edit" => new { type, conversationId = conversation, messageId = own.Long("messageId"), content = "edited" },
            "delete" => new { type, conversationId = conversation, messageId = own.Long("messageId") },
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a change frame"),
        };
        return new Scene(alice, a, b, conversation, fromBob, own, frame);
    }
}
