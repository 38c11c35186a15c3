namespace Bench.LoadGen.Targets;

// The SignalR reference server's hub contract, as its clients see it. The server declares the same shapes
// (bench/Bench.SignalR/Hubs/HubContracts.cs); the JSON hub protocol matches them by camelCase name.

/// <summary>The argument of the hub method <c>SendMessage</c>.</summary>
public sealed record HubSendMessage(long ConversationId, string ClientMessageId, string Content);

/// <summary>What <c>SendMessage</c> returns once the message is committed.</summary>
public sealed record HubAck(string ClientMessageId, long MessageId, long ConversationId, long Seq, DateTime Timestamp);

/// <summary>The <c>message</c> event sent to the other members of the conversation.</summary>
public sealed record HubMessage(
    long ConversationId,
    long MessageId,
    long Seq,
    long SenderId,
    string SenderName,
    string Content,
    string ClientMessageId,
    DateTime Timestamp);

public static class HubNames
{
    public const string SendMessage = "SendMessage";
    public const string Message = "message";
    public const string Ready = "ready";
}
