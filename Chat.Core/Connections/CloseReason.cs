using System.Net.WebSockets;

namespace Chat.Core.Connections;

/// <summary>Every way the gateway closes a socket, with its close code and the reason text the client sees.</summary>
public sealed record CloseReason(WebSocketCloseStatus Status, string Description)
{
    public static readonly CloseReason Normal = new(WebSocketCloseStatus.NormalClosure, "bye");
    public static readonly CloseReason ServerShutdown = new(WebSocketCloseStatus.EndpointUnavailable, "server shutting down");
    public static readonly CloseReason SlowConsumer = new(WebSocketCloseStatus.PolicyViolation, "slow consumer");
    public static readonly CloseReason TokenExpired = new(WebSocketCloseStatus.PolicyViolation, "token expired");
    public static readonly CloseReason RateLimitExceeded = new(WebSocketCloseStatus.PolicyViolation, "rate limit exceeded");
    public static readonly CloseReason BinaryFrame = new(WebSocketCloseStatus.InvalidMessageType, "binary frames are not supported");
    public static readonly CloseReason FrameTooLarge = new(WebSocketCloseStatus.MessageTooBig, "frame too large");
    public static readonly CloseReason InvalidUtf8 = new(WebSocketCloseStatus.InvalidPayloadData, "invalid UTF-8");
    public static readonly CloseReason InternalError = new(WebSocketCloseStatus.InternalServerError, "internal error");
}
