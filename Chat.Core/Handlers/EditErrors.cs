using Chat.Core.Protocol;
using Chat.Data.Messages;

namespace Chat.Core.Handlers;

/// <summary>The error frame for an <c>edit</c> or <c>delete</c> that did not take effect, by its outcome.</summary>
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
