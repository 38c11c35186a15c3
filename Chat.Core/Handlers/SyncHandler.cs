using Chat.Core.Connections;
using Chat.Core.Protocol;
using Chat.Data.Messages;

namespace Chat.Core.Handlers;

/// <summary>
/// <c>sync</c>: replays a conversation from any position, read from the database however old, then
/// <c>synced</c>. Deleted messages come as <c>messageDeleted</c> so that the replayed range has no holes.
/// </summary>
public sealed class SyncHandler(MessageHistoryRepository history) : IFrameHandler<SyncFrame>
{
    public async ValueTask HandleAsync(ChatConnection connection, SyncFrame frame, CancellationToken cancellationToken)
    {
        var page = await history.ReadAsync(frame.ConversationId, connection.UserId, frame.AfterSeq, beforeSeq: null, frame.Limit, cancellationToken);
        if (page is null)
        {
            connection.Send(FrameWriter.Error(FrameError.About(frame, ErrorCodes.AccessDenied, $"Not a member of conversation {frame.ConversationId}.")));
            return;
        }

        foreach (var message in page.Messages)
        {
            var payload = message.IsDeleted
                ? FrameWriter.MessageDeleted(message.ConversationId, message.MessageId, message.Seq, message.SenderId, message.DeletedAt ?? message.CreatedAt)
                : FrameWriter.Message(message.ToStored(), isCatchup: true);
            // Paced like catch-up: a long replay waits for the client to read instead of overflowing its queue.
            await connection.SendPacedAsync(new OutboundFrame(payload), cancellationToken);
        }

        // The replayed range is contiguous (tombstones included), so the client now holds everything up to here.
        var lastSeq = page.Messages.Count > 0 ? page.Messages[^1].Seq : Math.Max(page.LastSeq, frame.AfterSeq);
        connection.Send(FrameWriter.Synced(frame.ConversationId, frame.AfterSeq, lastSeq, page.HasMore));
    }
}
