namespace Chat.Core.Connections;

/// <summary>
/// Serialized bytes on their way to one connection. A broadcast shares one payload array between recipients.
/// <see cref="ConversationId"/> and <see cref="Seq"/> are set for chat messages only, so that frames held during
/// catch-up can be matched against what catch-up already sent.
/// </summary>
public readonly record struct OutboundFrame(ReadOnlyMemory<byte> Payload, long ConversationId = 0, long Seq = 0)
{
    public static implicit operator OutboundFrame(byte[] payload) => new(payload);
}
