using Chat.Core.Connections;
using Chat.Core.Conversations;
using Chat.Core.Options;
using Chat.Core.Protocol;
using Chat.Data;
using Chat.Data.Messages;
using Microsoft.Extensions.Options;

namespace Chat.Core.Handlers;

/// <summary>
/// <c>read</c>: moves the reader's position forward (never back), recomputes their unread count and marks the
/// covered messages read, then tells the conversation's other connections, and the reader's own the new count.
/// </summary>
/// <remarks>Bounded and announced as an edit is (see <see cref="EditHandler"/>).</remarks>
public sealed class ReadHandler(ReadReceiptRepository reads, IChatPublisher publisher, MembershipFences fences, IOptions<ChatDatabaseOptions> database) : IFrameHandler<ReadFrame>
{
    private readonly TimeSpan _requestTimeout = database.Value.RequestTimeout;

    // One user's reads of one conversation, from their devices at once, commit one after the other (the statement
    // locks their row) and must be announced in that order: published outside a lock, the receipt of seq 10 could
    // overtake that of seq 9, and observers would see the position step back. Striped by (conversation, user).
    // Held by the work, not by the handler: a handler that stopped waiting at the deadline must not let the next
    // receipt overtake one still committing.
    private readonly SemaphoreSlim[] _readers = [.. Enumerable.Range(0, 256).Select(_ => new SemaphoreSlim(1, 1))];

    public async ValueTask HandleAsync(ChatConnection connection, ReadFrame frame, CancellationToken cancellationToken)
    {
        var result = await RequestDatabase.WithinAsync(ct => MarkAndAnnounceAsync(connection, frame, ct), _requestTimeout, CancellationToken.None);
        switch (result.Outcome)
        {
            case ReadOutcome.NotMember:
                connection.SendError(FrameError.About(frame, ErrorCodes.AccessDenied, $"Not a member of conversation {frame.ConversationId}."));
                break;
            case ReadOutcome.MessageNotFound:
                connection.SendError(FrameError.About(frame, ErrorCodes.NotFound, $"Message {frame.MessageId} is not in conversation {frame.ConversationId}."));
                break;
            case ReadOutcome.AlreadyRead:
                // Idempotent and never backwards: a receipt for an older message changes nothing and says nothing.
                break;
        }
    }

    private async Task<ReadResult> MarkAndAnnounceAsync(ChatConnection connection, ReadFrame frame, CancellationToken cancellationToken)
    {
        var reader = _readers[(int)((ulong)HashCode.Combine(frame.ConversationId, connection.UserId) % (ulong)_readers.Length)];
        await reader.WaitAsync(cancellationToken);
        try
        {
            var result = await reads.MarkReadAsync(frame.ConversationId, connection.UserId, frame.MessageId, cancellationToken);
            if (result.Outcome == ReadOutcome.Moved)
            {
                // Like a message: a receipt committed after a removal must not reach the leaver (MembershipFences).
                await fences.WaitOpenAsync(frame.ConversationId);
                // The reader's other devices also get the unread count the statement that moved the position set, so
                // that one holding only some of the messages (hasMore, ?catchup=false) need not count them itself.
                // It is the reader's own business: everyone else gets the frame without it.
                publisher.PublishToConversation(
                    frame.ConversationId,
                    FrameWriter.Read(frame.ConversationId, frame.MessageId, result.Seq, connection.UserId, result.ReadAt),
                    from: connection,
                    () => FrameWriter.Read(frame.ConversationId, frame.MessageId, result.Seq, connection.UserId, result.ReadAt,
                        new UnreadCountAt(result.UnreadCount, result.LastSeq, result.LastChangeSeq)));
            }
            return result;
        }
        finally
        {
            reader.Release();
        }
    }
}
