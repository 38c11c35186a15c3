namespace Chat.Core.Connections;

/// <summary>
/// The one seam between handlers and delivery: publish to a conversation's subscribers or to users' connections.
/// In one process the <see cref="ConnectionRegistry"/> delivers directly; a fan-out across several gateway nodes
/// replaces it here without touching the handlers.
/// </summary>
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

    /// <summary>Queues the frame once to every live connection of the given users.</summary>
    void PublishToUsers(IEnumerable<long> userIds, OutboundFrame frame);
}
