using Chat.Core.Connections;
using Chat.Core.Protocol;
using Chat.Data.Messages;

namespace Chat.Core.Handlers;

/// <summary>
/// <c>read</c>: moves the reader's position forward (never back), recomputes their unread count and marks the
/// covered messages read, then tells the conversation's other connections.
/// </summary>
public sealed class ReadHandler(ReadReceiptRepository reads, IChatPublisher publisher) : IFrameHandler<ReadFrame>
{
    public async ValueTask HandleAsync(ChatConnection connection, ReadFrame frame, CancellationToken cancellationToken)
    {
        var result = await reads.MarkReadAsync(frame.ConversationId, connection.UserId, frame.MessageId, cancellationToken);
        switch (result.Outcome)
        {
            case ReadOutcome.Moved:
                publisher.PublishToConversation(
                    frame.ConversationId,
                    FrameWriter.Read(frame.ConversationId, frame.MessageId, connection.UserId, result.ReadAt),
                    except: connection);
                break;
            case ReadOutcome.AlreadyRead:
                // Idempotent and never backwards: a receipt for an older message changes nothing and says nothing.
                break;
            case ReadOutcome.NotMember:
                connection.SendError(FrameError.About(frame, ErrorCodes.AccessDenied, $"Not a member of conversation {frame.ConversationId}."));
                break;
            case ReadOutcome.MessageNotFound:
                connection.SendError(FrameError.About(frame, ErrorCodes.NotFound, $"Message {frame.MessageId} is not in conversation {frame.ConversationId}."));
                break;
        }
    }
}
