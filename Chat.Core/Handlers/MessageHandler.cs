using Chat.Core.Connections;
using Chat.Core.Conversations;
using Chat.Core.Messages;
using Chat.Core.Protocol;
using Chat.Data.Messages;

namespace Chat.Core.Handlers;

/// <summary>
/// <c>message</c>: hands the message to the <see cref="MessageWriter"/>, which stores it in the next batch and
/// publishes it in seq order to every other connection of the conversation, the sender's other devices included;
/// then answers the sender, after COMMIT.
/// </summary>
public sealed class MessageHandler(MessageWriter writer, ConnectionRegistry registry, IChatPublisher publisher, MembershipFences fences, TimeProvider time) : IFrameHandler<SendMessageFrame>
{
    public async ValueTask HandleAsync(ChatConnection connection, SendMessageFrame frame, CancellationToken cancellationToken)
    {
        var message = new NewMessage(
            frame.ConversationId,
            connection.UserId,
            frame.ClientMessageId,
            frame.Content,
            frame.MessageType,
            frame.ReplyToMessageId,
            frame.MediaUrl,
            MessagePreview.Of(frame.Content));

        var result = await writer.StoreAsync(message, connection, cancellationToken);

        switch (result.Outcome)
        {
            case StoreOutcome.Stored:
                // A membership change that began once the message was published goes first, as it would for the
                // message: the stop must not reach a member just removed, after their "left" (MembershipFences).
                await fences.WaitOpenAsync(frame.ConversationId);
                TypingHandler.StopUser(registry, publisher, connection, frame.ConversationId, time);
                goto case StoreOutcome.Duplicate;
            case StoreOutcome.Duplicate:
                // A duplicate gets the original ack (same messageId and seq); the writer does not broadcast it again.
                connection.Send(FrameWriter.Ack(frame.ClientMessageId, result.MessageId, result.ConversationId, result.Seq, result.CreatedAt));
                break;
            case StoreOutcome.NotMember:
                connection.SendError(FrameError.About(
                    frame, ErrorCodes.AccessDenied, $"Not a member of conversation {frame.ConversationId}."));
                break;
            case StoreOutcome.BadReply:
                connection.SendError(FrameError.About(
                    frame, ErrorCodes.BadRequest, $"replyToMessageId {frame.ReplyToMessageId} is not a message of conversation {frame.ConversationId}."));
                break;
        }
    }
}
