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

internal static class EditErrors
{
    public static FrameError For(EditOutcome outcome, ClientFrame frame, long conversationId, long messageId) => outcome switch
    {
        EditOutcome.NotMember => FrameError.About(frame, ErrorCodes.AccessDenied, $"Not a member of conversation {conversationId}."),
        EditOutcome.NotSender => FrameError.About(frame, ErrorCodes.AccessDenied, $"Message {messageId} was sent by someone else."),
        EditOutcome.Deleted => FrameError.About(frame, ErrorCodes.NotFound, $"Message {messageId} is deleted."),
        _ => FrameError.About(frame, ErrorCodes.NotFound, $"Message {messageId} is not in conversation {conversationId}."),
    };
}
