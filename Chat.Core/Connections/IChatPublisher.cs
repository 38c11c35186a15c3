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

    /// <summary>Queues the frame once to every live connection of the given users.</summary>
    void PublishToUsers(IEnumerable<long> userIds, OutboundFrame frame);
}
