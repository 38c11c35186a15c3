using Chat.Core.Connections;
using Chat.Core.Conversations;
using Chat.Core.Options;
using Chat.Core.Protocol;
using Chat.Data;
using Chat.Data.Messages;
using Microsoft.Extensions.Options;

namespace Chat.Core.Handlers;

/// <summary><c>edit</c>: the sender replaces the text of their own message; every connection of the conversation, the editor's included, receives <c>messageEdited</c>.</summary>
public sealed class EditHandler(MessageEditRepository edits, IChatPublisher publisher, MembershipFences fences, IOptions<ChatDatabaseOptions> database) : IFrameHandler<EditFrame>
{
    private readonly TimeSpan _requestTimeout = database.Value.RequestTimeout;

    /// <remarks>
    /// Bounded by <c>Chat:Database:RequestTimeout</c>: past it the client hears <c>error internal</c> and the
    /// connection's next frame is handled, instead of waiting out the pool's 15 s or a lock, once per retry. The
    /// edit and its announcement are one piece of work that only the deadline cancels, not the socket going away,
    /// and that the deadline cannot cut between the commit and the announcement (the repository commits without a
    /// token): as for a message the writer has taken and a membership change whose caller hangs up, an edit the
    /// database commits reaches the conversation's connections even when its editor is gone, or heard
    /// <c>error internal</c> because the commit came just at the deadline (its retry then announces the same edit
    /// again, protocol §5.6).
    /// </remarks>
    public async ValueTask HandleAsync(ChatConnection connection, EditFrame frame, CancellationToken cancellationToken)
    {
        var result = await RequestDatabase.WithinAsync(ct => EditAndAnnounceAsync(frame, connection.UserId, ct), _requestTimeout, CancellationToken.None);
        if (result.Outcome != EditOutcome.Done)
        {
            connection.SendError(EditErrors.For(result.Outcome, frame, frame.ConversationId, frame.MessageId));
        }
    }

    private async Task<EditResult> EditAndAnnounceAsync(EditFrame frame, long userId, CancellationToken cancellationToken)
    {
        var result = await edits.EditAsync(frame.ConversationId, frame.MessageId, userId, frame.Content, MessagePreview.Of(frame.Content), cancellationToken);
        if (result.Outcome == EditOutcome.Done)
        {
            // Like a message: an edit committed after a removal must not reach the leaver (MembershipFences).
            await fences.WaitOpenAsync(frame.ConversationId);
            publisher.PublishToConversation(
                frame.ConversationId,
                FrameWriter.MessageEdited(frame.ConversationId, frame.MessageId, result.Seq, userId, frame.Content, result.At, result.ChangeSeq));
        }
        return result;
    }
}
