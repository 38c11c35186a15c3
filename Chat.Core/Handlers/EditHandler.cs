using Chat.Core.Connections;
using Chat.Core.Conversations;
using Chat.Core.Protocol;
using Chat.Data.Messages;

namespace Chat.Core.Handlers;

/// <summary><c>edit</c>: the sender replaces the text of their own message; every connection of the conversation, the editor's included, receives <c>messageEdited</c>.</summary>
public sealed class EditHandler(MessageEditRepository edits, IChatPublisher publisher, MembershipFences fences) : IFrameHandler<EditFrame>
{
    public async ValueTask HandleAsync(ChatConnection connection, EditFrame frame, CancellationToken cancellationToken)
    {
        var result = await edits.EditAsync(frame.ConversationId, frame.MessageId, connection.UserId, frame.Content, MessagePreview.Of(frame.Content), cancellationToken);
        if (result.Outcome == EditOutcome.Done)
        {
            // Like a message: an edit committed after a removal must not reach the leaver (MembershipFences).
            await fences.WaitOpenAsync(frame.ConversationId);
            publisher.PublishToConversation(
                frame.ConversationId,
                FrameWriter.MessageEdited(frame.ConversationId, frame.MessageId, result.Seq, connection.UserId, frame.Content, result.At, result.ChangeSeq));
        }
        else
        {
            connection.SendError(EditErrors.For(result.Outcome, frame, frame.ConversationId, frame.MessageId));
        }
    }
}
