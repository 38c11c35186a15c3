namespace Bench.SignalR.Hubs;

// The hub's contract. The load generator declares the same shapes (bench/Bench.LoadGen/Targets/HubContracts.cs).

public sealed record SendMessageRequest(long ConversationId, string ClientMessageId, string Content);

public sealed record MessageAck(string ClientMessageId, long MessageId, long ConversationId, long Seq, DateTime Timestamp);

public sealed record MessageEvent(
    long ConversationId,
    long MessageId,
    long Seq,
    long SenderId,
    string SenderName,
    string Content,
    string ClientMessageId,
    DateTime Timestamp);
