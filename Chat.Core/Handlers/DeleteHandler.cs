using Chat.Core.Connections;
using Chat.Core.Conversations;
using Chat.Core.Protocol;
using Chat.Data.Messages;

namespace Chat.Core.Handlers;

/// <summary><c>delete</c>: the sender deletes their own message; every connection of the conversation, the deleter's included, receives <c>messageDeleted</c>.</summary>
public sealed class DeleteHandler(MessageEditRepository edits, IChatPublisher publisher, MembershipFences fences) : IFrameHandler<DeleteFrame>
{
    public async ValueTask HandleAsync(ChatConnection connection, DeleteFrame frame, CancellationToken cancellationToken)
    {
        var result = await edits.DeleteAsync(frame.ConversationId, frame.MessageId, connection.UserId, MessagePreview.Of, cancellationToken);
        switch (result.Outcome)
        {
            case EditOutcome.Done:
            case EditOutcome.AlreadyDeleted:
                // Told again on a repeat: a retry may follow a first attempt that committed but never got to tell
                // anyone. The frame is a state update, so hearing it twice is harmless.
                await fences.WaitOpenAsync(frame.ConversationId);
                publisher.PublishToConversation(
                    frame.ConversationId,
                    FrameWriter.MessageDeleted(frame.ConversationId, frame.MessageId, result.Seq, connection.UserId, result.At, result.ChangeSeq));
                break;
            default:
                connection.SendError(EditErrors.For(result.Outcome, frame, frame.ConversationId, frame.MessageId));
                break;
        }
    }
}
