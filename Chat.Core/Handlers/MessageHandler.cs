using Chat.Core.Connections;
using Chat.Core.Protocol;
using Chat.Data.Messages;

namespace Chat.Core.Handlers;

/// <summary>
/// <c>message</c>: stores the message (one statement, one transaction), acknowledges it after COMMIT and fans it
/// out in seq order to every other connection of the conversation, the sender's other devices included.
/// </summary>
public sealed class MessageHandler(MessageRepository messages, ConversationSequencer sequencer, IChatPublisher publisher, TimeProvider time) : IFrameHandler<SendMessageFrame>
{
    public async ValueTask HandleAsync(ChatConnection connection, SendMessageFrame frame, CancellationToken cancellationToken)
    {
        var sender = connection.User;
        var message = new NewMessage(
            frame.ConversationId,
            sender.UserId,
            frame.ClientMessageId,
            frame.Content,
            frame.MessageType,
            frame.ReplyToMessageId,
            frame.MediaUrl,
            MessagePreview.Of(frame.Content));

        StoreResult result;
        Publication? publication = null;
        var ticket = sequencer.Enter(frame.ConversationId);
        try
        {
            result = await messages.StoreAsync(message, cancellationToken);
            if (result.Outcome == StoreOutcome.Stored)
            {
                var payload = FrameWriter.Message(new StoredMessage
                {
                    MessageId = result.MessageId,
                    ConversationId = result.ConversationId,
                    Seq = result.Seq,
                    SenderId = sender.UserId,
                    SenderName = sender.DisplayName,
                    SenderAvatarUrl = sender.AvatarUrl,
                    Content = frame.Content,
                    MessageType = frame.MessageType,
                    ReplyToMessageId = frame.ReplyToMessageId,
                    MediaUrl = frame.MediaUrl,
                    ClientMessageId = frame.ClientMessageId,
                    CreatedAt = result.CreatedAt,
                }, isCatchup: false);
                publication = new Publication(result.Seq, new OutboundFrame(payload, result.ConversationId, result.Seq), connection);
            }
        }
        finally
        {
            sequencer.Leave(frame.ConversationId, ticket, publication);
        }

        switch (result.Outcome)
        {
            case StoreOutcome.Stored:
                // Sending ends typing in that conversation.
                if (connection.Typing.Set(frame.ConversationId, isTyping: false, until: 0))
                {
                    TypingHandler.Publish(publisher, connection, frame.ConversationId, isTyping: false, time.GetUtcNow().UtcDateTime);
                }
                goto case StoreOutcome.Duplicate;
            case StoreOutcome.Duplicate:
                // A duplicate gets the original ack (same messageId and seq) and nothing is broadcast again.
                connection.Send(FrameWriter.Ack(frame.ClientMessageId, result.MessageId, result.ConversationId, result.Seq, result.CreatedAt));
                break;
            case StoreOutcome.NotMember:
                connection.Send(FrameWriter.Error(new FrameError(
                    ErrorCodes.AccessDenied, $"Not a member of conversation {frame.ConversationId}.", frame.ClientMessageId)));
                break;
            case StoreOutcome.BadReply:
                connection.Send(FrameWriter.Error(new FrameError(
                    ErrorCodes.BadRequest, $"replyToMessageId {frame.ReplyToMessageId} is not a message of conversation {frame.ConversationId}.", frame.ClientMessageId)));
                break;
        }
    }
}
