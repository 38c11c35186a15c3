namespace Chat.Core.Connections;

/// <summary>
/// The one seam between what happens and who receives it: every frame that goes to more than one connection (a
/// message, an edit or delete, a read receipt, typing, a membership change, a change of presence) is queued through
/// here, by the handlers, the message writer, the presence announcer, the typing sweeper and membership changes. In
/// one process the <see cref="ConnectionRegistry"/> delivers directly; a fan-out across several gateway nodes
/// replaces it here without touching its callers.
/// </summary>
/// <remarks>
/// <para>
/// Each call has queued its frames before it returns, so that calls made one after the other reach each recipient in
/// that order: the presence announcer, which makes its calls under its own lock, relies on it (protocol §11), and an
/// implementation that forwards frames elsewhere must keep it.
/// </para>
/// <para>
/// The recipients are the connections that are open, including those still in their catch-up, unless a method says
/// otherwise: what is queued to such a connection is held and delivered right after its <c>ready</c> (protocol §4).
/// </para>
/// <para>
/// Deliberately outside the seam: frames for one connection (welcome, catch-up, <c>ready</c>, <c>ack</c>,
/// <c>error</c>, a <c>sync</c> answer), which go to <see cref="ChatConnection"/> itself; and the state the callers
/// read and change in this node's <see cref="ConnectionRegistry"/>: subscriptions and membership changes, statuses,
/// which devices of a user are typing where (the per-user typing rule of protocol §9). Sharing that state between
/// nodes is another design than forwarding frames.
/// </para>
/// </remarks>
public interface IChatPublisher
{
    /// <summary>Queues the frame to every connection subscribed to the conversation except <paramref name="except"/>.</summary>
    void PublishToConversation(long conversationId, OutboundFrame frame, ChatConnection? except = null);

    /// <summary>
    /// Queues to every connection subscribed to the conversation except <paramref name="from"/>: to the other
    /// connections of <paramref name="from"/>'s user what <paramref name="toOwnDevices"/> makes, to everyone else
    /// <paramref name="frame"/>. For what a user's devices are told and the others must not be (a read receipt's
    /// unread count). <paramref name="toOwnDevices"/> is called once, and only when the user has such a connection.
    /// </summary>
    void PublishToConversation(long conversationId, OutboundFrame frame, ChatConnection from, Func<OutboundFrame> toOwnDevices);

    /// <summary>
    /// Queues the frame once to every connection of every user, but <paramref name="exceptUserId"/>, who has a
    /// connection subscribed to any of the conversations, however many of them they share: the observers of a
    /// user's presence (protocol §11). The user's connections are reached by <see cref="PublishToOwnDevices"/>.
    /// </summary>
    void PublishToUsersIn(IEnumerable<long> conversationIds, OutboundFrame frame, long exceptUserId);

    /// <summary>
    /// Queues a <c>presence</c> frame about a change of the user's status, made by <paramref name="source"/> (its
    /// going live, its status or its departure), to the user's own live connections (past their catch-up): every one
    /// but the source, and the source too once it has been sent such a frame before (protocol §11, "The user's own
    /// devices"). A connection still in its catch-up is sent nothing: it reads the user's status as it goes live, for
    /// its <c>ready</c>, and hears every change after that.
    /// </summary>
    void PublishToOwnDevices(ChatConnection source, OutboundFrame frame);
}
