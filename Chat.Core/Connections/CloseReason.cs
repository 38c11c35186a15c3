using System.Net.WebSockets;

namespace Chat.Core.Connections;

/// <summary>Every way the gateway closes a socket, with its close code and the reason text the client sees.</summary>
/// <param name="Label">The reason's name in the <c>chat_connections_closed_total</c> metric.</param>
public sealed record CloseReason(WebSocketCloseStatus Status, string Description, string Label)
{
    public static readonly CloseReason Normal = new(WebSocketCloseStatus.NormalClosure, "bye", "normal");
    public static readonly CloseReason ServerShutdown = new(WebSocketCloseStatus.EndpointUnavailable, "server shutting down", "shutdown");
    public static readonly CloseReason SlowConsumer = new(WebSocketCloseStatus.PolicyViolation, "slow consumer", "slow_consumer");
    public static readonly CloseReason TokenExpired = new(WebSocketCloseStatus.PolicyViolation, "token expired", "token_expired");
    public static readonly CloseReason RateLimitExceeded = new(WebSocketCloseStatus.PolicyViolation, "rate limit exceeded", "rate_limit_exceeded");
    public static readonly CloseReason BinaryFrame = new(WebSocketCloseStatus.InvalidMessageType, "binary frames are not supported", "binary_frame");
    public static readonly CloseReason FrameTooLarge = new(WebSocketCloseStatus.MessageTooBig, "frame too large", "frame_too_large");
    public static readonly CloseReason InvalidUtf8 = new(WebSocketCloseStatus.InvalidPayloadData, "invalid UTF-8", "invalid_utf8");

    /// <summary>A frame that breaks RFC 6455 (reserved bits, an unknown opcode, a bad close code). Like invalid UTF-8, found and closed by the WebSocket library (<see cref="CloseReasonStream"/>).</summary>
    public static readonly CloseReason ProtocolError = new(WebSocketCloseStatus.ProtocolError, "WebSocket protocol error", "protocol_error");

    public static readonly CloseReason InternalError = new(WebSocketCloseStatus.InternalServerError, "internal error", "internal_error");

    /// <summary>
    /// The catch-up could not be read: the database is unreachable, refuses the gateway, or did not answer within
    /// <c>Chat:Database:RequestTimeout</c> (the shared pool held by a reconnect storm). The close code of an internal
    /// error, and its metric label, with a reason that tells the client to come back later.
    /// </summary>
    public static readonly CloseReason DatabaseUnavailable = new(WebSocketCloseStatus.InternalServerError, "database unavailable", "internal_error");

    /// <summary>The socket failed (a send failed, or no pong came back): no close frame can be exchanged.</summary>
    public static readonly CloseReason Lost = new(WebSocketCloseStatus.EndpointUnavailable, "connection lost", "lost");

    /// <summary>The metric's label for a socket the client closed.</summary>
    public const string ClosedByClient = "client";

    /// <summary>
    /// Every label of <c>chat_connections_closed_total</c>, each shown from the start (at 0) so that an alert on one
    /// has data. Not <see cref="Normal"/>: the gateway closes with it only in answer to the client's close, which is
    /// counted as <see cref="ClosedByClient"/>.
    /// </summary>
    public static IReadOnlyList<string> MetricLabels { get; } =
    [
        ServerShutdown.Label, SlowConsumer.Label, TokenExpired.Label, RateLimitExceeded.Label, BinaryFrame.Label,
        FrameTooLarge.Label, InvalidUtf8.Label, ProtocolError.Label, InternalError.Label, Lost.Label, ClosedByClient,
    ];
}
