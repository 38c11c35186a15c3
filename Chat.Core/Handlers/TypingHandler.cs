using Chat.Core.Connections;
using Chat.Core.Conversations;
using Chat.Core.Options;
using Chat.Core.Protocol;
using Microsoft.Extensions.Options;

namespace Chat.Core.Handlers;

/// <summary><c>typing</c>: members only; relayed to the conversation's other connections, never stored; lapses on its own.</summary>
public sealed class TypingHandler(
    ConnectionRegistry registry, IChatPublisher publisher, MembershipFences fences, TimeProvider time, IOptions<ChatLimitsOptions> limits) : IFrameHandler<TypingFrame>
{
    public async ValueTask HandleAsync(ChatConnection connection, TypingFrame frame, CancellationToken cancellationToken)
    {
        // Like a message: typing that comes while a membership change of the conversation is being applied is
        // handled after it (MembershipFences), so it never reaches a member who was just removed (they still receive
        // the conversation until then) and a removed member's own is refused below instead of being shown to the
        // others after their "left". With no fence up, as nearly always, this is one read and no wait.
        await fences.WaitOpenAsync(frame.ConversationId);

        // The connection is subscribed to exactly the conversations its user is an active member of.
        if (!registry.IsSubscribed(connection, frame.ConversationId))
        {
            connection.SendError(FrameError.About(frame, ErrorCodes.AccessDenied, $"Not a member of conversation {frame.ConversationId}."));
            return;
        }

        // Remembered so that typing lapses by itself after TypingTimeout without a renewal, and so that a
        // connection that closes mid-sentence tells the others it stopped. Every frame is relayed, renewals too.
        // The time is read under the lock too, so that announcements of one connection carry ascending timestamps.
        connection.Typing.Announce(
            frame.ConversationId,
            frame.IsTyping,
            time.GetTimestamp() + (long)(limits.Value.TypingTimeout.TotalSeconds * time.TimestampFrequency),
            () => Publish(registry, publisher, connection, frame.ConversationId, frame.IsTyping, time.GetUtcNow().UtcDateTime));

        // A removal from the conversation that ran between the check above and Announce found no typing to stop,
        // and the others would see this user typing until the sweeper lapses it: look again, and take it back.
        if (frame.IsTyping && !registry.IsSubscribed(connection, frame.ConversationId))
        {
            connection.Typing.Stop(frame.ConversationId, () =>
                Publish(registry, publisher, connection, frame.ConversationId, isTyping: false, time.GetUtcNow().UtcDateTime));
        }
    }

    /// <summary>
    /// Sending a message ends its sender's typing in the conversation, on every device of theirs: typing is shown per
    /// user, and a stop from the sending device alone would be held back while another device was typing there,
    /// leaving the others to see the user typing after the message until that device's typing lapsed.
    /// </summary>
    internal static void StopUser(ConnectionRegistry registry, IChatPublisher publisher, ChatConnection connection, long conversationId, TimeProvider time)
    {
        foreach (var device in registry.TypingIn(connection.UserId, conversationId))
        {
            // Each stop is held back while a device not yet stopped types; the last one says it.
            device.Typing.Stop(conversationId, () => Publish(registry, publisher, device, conversationId, isTyping: false, time.GetUtcNow().UtcDateTime));
        }
    }

    /// <remarks>
    /// Typing is shown per user, as presence is: a frame names the user, not the device, so a stop of one device
    /// while another of the user's is still typing there would tell the others the user stopped. Such a stop is not
    /// sent; the last device to stop sends it. Called under the user's typing lock (<see cref="TypingState"/>), which
    /// every device of theirs takes to start or stop, so no start lands between the look at the others and the
    /// stop's announcement, and of two devices stopping, the second sees the first stopped. Which devices type is
    /// asked of this node's <paramref name="registry"/>, whatever <paramref name="publisher"/> delivers the frame (see
    /// <see cref="IChatPublisher"/>).
    /// </remarks>
    internal static void Publish(ConnectionRegistry registry, IChatPublisher publisher, ChatConnection connection, long conversationId, bool isTyping, DateTime now)
    {
        if (!isTyping && registry.IsTypingElsewhere(connection, conversationId))
        {
            return;
        }
        publisher.PublishToConversation(
            conversationId,
            FrameWriter.Typing(conversationId, connection.UserId, connection.User.DisplayName, isTyping, now),
            except: connection);
    }
}
