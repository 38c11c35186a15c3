using Chat.Core.Connections;
using Chat.Core.Conversations;
using Chat.Core.Options;
using Chat.Core.Protocol;
using Chat.Data;
using Chat.Data.Messages;
using Microsoft.Extensions.Options;

namespace Chat.Core.Handlers;

/// <summary><c>delete</c>: the sender deletes their own message; every connection of the conversation, the deleter's included, receives <c>messageDeleted</c>.</summary>
public sealed class DeleteHandler(MessageEditRepository edits, IChatPublisher publisher, MembershipFences fences, IOptions<ChatDatabaseOptions> database) : IFrameHandler<DeleteFrame>
{
    private readonly TimeSpan _requestTimeout = database.Value.RequestTimeout;

    /// <remarks>Bounded and announced as an edit is (see <see cref="EditHandler"/>).</remarks>
    public async ValueTask HandleAsync(ChatConnection connection, DeleteFrame frame, CancellationToken cancellationToken)
    {
        var result = await RequestDatabase.WithinAsync(ct => DeleteAndAnnounceAsync(frame, connection.UserId, ct), _requestTimeout, CancellationToken.None);
        if (result.Outcome is not (EditOutcome.Done or EditOutcome.AlreadyDeleted))
        {
            connection.SendError(EditErrors.For(result.Outcome, frame, frame.ConversationId, frame.MessageId));
        }
    }

    private async Task<EditResult> DeleteAndAnnounceAsync(DeleteFrame frame, long userId, CancellationToken cancellationToken)
    {
        var result = await edits.DeleteAsync(frame.ConversationId, frame.MessageId, userId, MessagePreview.Of, cancellationToken);
        if (result.Outcome is EditOutcome.Done or EditOutcome.AlreadyDeleted)
        {
            // Told again on a repeat: a retry may follow a first attempt that committed but never got to tell
            // anyone. The frame is a state update, so hearing it twice is harmless.
            await fences.WaitOpenAsync(frame.ConversationId);
            publisher.PublishToConversation(
                frame.ConversationId,
                FrameWriter.MessageDeleted(frame.ConversationId, frame.MessageId, result.Seq, userId, result.At, result.ChangeSeq));
        }
        return result;
    }
}
