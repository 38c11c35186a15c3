using Chat.Core.Connections;
using Chat.Core.Protocol;

namespace Chat.Core.Handlers;

/// <summary><c>typing</c>: members only; relayed to the conversation's other connections, never stored.</summary>
public sealed class TypingHandler(ConnectionRegistry registry, IChatPublisher publisher, TimeProvider time) : IFrameHandler<TypingFrame>
{
    public ValueTask HandleAsync(ChatConnection connection, TypingFrame frame, CancellationToken cancellationToken)
    {
        // The connection is subscribed to exactly the conversations its user is an active member of.
        if (!registry.IsSubscribed(connection, frame.ConversationId))
        {
            connection.Send(FrameWriter.Error(new FrameError(ErrorCodes.AccessDenied, $"Not a member of conversation {frame.ConversationId}.")));
            return ValueTask.CompletedTask;
        }

        // Remembered so that a connection that closes mid-sentence tells the others it stopped.
        if (frame.IsTyping)
        {
            connection.TypingIn.Add(frame.ConversationId);
        }
        else
        {
            connection.TypingIn.Remove(frame.ConversationId);
        }

        Publish(publisher, connection, frame.ConversationId, frame.IsTyping, time.GetUtcNow().UtcDateTime);
        return ValueTask.CompletedTask;
    }

    internal static void Publish(IChatPublisher publisher, ChatConnection connection, long conversationId, bool isTyping, DateTime now) =>
        publisher.PublishToConversation(
            conversationId,
            FrameWriter.Typing(conversationId, connection.UserId, connection.User.DisplayName, isTyping, now),
            except: connection);
}
