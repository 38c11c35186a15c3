using Chat.Core.Connections;
using Chat.Core.Options;
using Chat.Core.Protocol;
using Chat.Data;
using Chat.Data.Messages;
using Microsoft.Extensions.Options;

namespace Chat.Core.Handlers;

/// <summary>
/// <c>sync</c>: replays a conversation from any position, read from the database however old, then
/// <c>synced</c>. With <c>afterChangeSeq</c>, the edits and deletes the client missed to messages it holds come
/// first, as <c>messageEdited</c> and <c>messageDeleted</c>. Deleted messages in the replayed range come as
/// <c>messageDeleted</c> so that the range has no holes.
/// </summary>
public sealed class SyncHandler(MessageHistoryRepository history, IOptions<ChatDatabaseOptions> database) : IFrameHandler<SyncFrame>
{
    private readonly TimeSpan _requestTimeout = database.Value.RequestTimeout;

    public async ValueTask HandleAsync(ChatConnection connection, SyncFrame frame, CancellationToken cancellationToken)
    {
        // The read is bounded by Chat:Database:RequestTimeout, as a catch-up read is: past it the client hears error
        // internal and may send the same sync again. The replay that follows goes at the client's pace, not the database's.
        var page = await RequestDatabase.WithinAsync(
            ct => history.SyncAsync(frame.ConversationId, connection.UserId, frame.AfterSeq, frame.AfterChangeSeq, frame.Limit, ct),
            _requestTimeout,
            cancellationToken);
        if (page is null)
        {
            connection.SendError(FrameError.About(frame, ErrorCodes.AccessDenied, $"Not a member of conversation {frame.ConversationId}."));
            return;
        }

        // Paced like catch-up: a long replay waits for the client to read instead of overflowing its queue.
        foreach (var change in page.Changes)
        {
            await connection.SendPacedAsync(new OutboundFrame(Change(change)), cancellationToken);
        }
        foreach (var message in page.Messages)
        {
            var payload = message.IsDeleted ? Change(message) : FrameWriter.Message(message.ToStored(), isCatchup: true);
            await connection.SendPacedAsync(new OutboundFrame(payload), cancellationToken);
        }

        connection.Send(FrameWriter.Synced(frame.ConversationId, frame.AfterSeq, page.LastSeq, page.HasMore, page.LastChangeSeq));
    }

    /// <summary>A message's latest change as it stands now: its deletion, or its current text.</summary>
    private static byte[] Change(HistoryMessage m) => m.IsDeleted
        ? FrameWriter.MessageDeleted(m.ConversationId, m.MessageId, m.Seq, m.SenderId, m.DeletedAt ?? m.CreatedAt, m.ChangeSeq ?? 0)
        : FrameWriter.MessageEdited(m.ConversationId, m.MessageId, m.Seq, m.SenderId, m.Content!, m.EditedAt ?? m.CreatedAt, m.ChangeSeq ?? 0);
}
