using System.Net.WebSockets;
using Microsoft.Extensions.Logging;

namespace Chat.Core.Logging;

/// <summary>Every log line of the chat core, source-generated.</summary>
internal static partial class ChatLog
{
    [LoggerMessage(1, LogLevel.Information, "Connection {ConnectionId} opened for user {UserId} ({ExternalId})")]
    public static partial void ConnectionOpened(ILogger logger, long connectionId, long userId, string externalId);

    [LoggerMessage(2, LogLevel.Information, "Connection {ConnectionId} of user {UserId} closed ({CloseStatus} {CloseDescription})")]
    public static partial void ConnectionClosed(ILogger logger, long connectionId, long userId, WebSocketCloseStatus? closeStatus, string? closeDescription);

    // Its own line rather than an empty description: "(NormalClosure )" reads as if a reason were cut off.
    [LoggerMessage(12, LogLevel.Information, "Connection {ConnectionId} of user {UserId} closed ({CloseStatus}, no reason given)")]
    public static partial void ConnectionClosedWithoutReason(ILogger logger, long connectionId, long userId, WebSocketCloseStatus? closeStatus);

    [LoggerMessage(10, LogLevel.Information, "Connection {ConnectionId} of user {UserId} was lost: it ended without a close frame")]
    public static partial void ConnectionLost(ILogger logger, long connectionId, long userId);

    [LoggerMessage(3, LogLevel.Debug, "Connection {ConnectionId} sent a refused frame: {Code} {Message}")]
    public static partial void FrameRefused(ILogger logger, long connectionId, string code, string message);

    [LoggerMessage(4, LogLevel.Error, "Connection {ConnectionId}: handling a {FrameType} frame failed")]
    public static partial void HandlerFailed(ILogger logger, Exception exception, long connectionId, string frameType);

    // Debug, without the stack: during an outage every frame that needs the database fails this way, and a line per
    // frame at Warning would flood the log when it matters most. The writer logs each failed batch, readiness turns
    // 503, and chat_frames_errors_total{code="internal"} and chat_database_retries_total count them.
    [LoggerMessage(11, LogLevel.Debug, "Connection {ConnectionId}: a {FrameType} frame failed: the database is unavailable ({Reason})")]
    public static partial void HandlerFailedOnDatabase(ILogger logger, long connectionId, string frameType, string reason);

    [LoggerMessage(5, LogLevel.Warning, "Connection {ConnectionId} of user {UserId} is closed: {Reason}")]
    public static partial void ClosingConnection(ILogger logger, long connectionId, long userId, string reason);

    [LoggerMessage(6, LogLevel.Error, "Connection {ConnectionId}: catch-up failed; closing")]
    public static partial void CatchupFailed(ILogger logger, Exception exception, long connectionId);

    // Warning without the stack, as a handshake refused with 503 for the same reason is: the socket is closed with
    // 1011 "database unavailable", and in a reconnect storm every client that came too late logs this line.
    [LoggerMessage(13, LogLevel.Warning, "Connection {ConnectionId}: catch-up failed: the database is unavailable ({Reason}); closing")]
    public static partial void CatchupFailedOnDatabase(ILogger logger, long connectionId, string reason);

    [LoggerMessage(7, LogLevel.Debug, "Connection {ConnectionId}: socket ended abruptly")]
    public static partial void SocketFailed(ILogger logger, Exception exception, long connectionId);

    [LoggerMessage(8, LogLevel.Warning, "Connection {ConnectionId} did not finish closing in time and was aborted")]
    public static partial void CloseTimedOut(ILogger logger, long connectionId);

    [LoggerMessage(9, LogLevel.Warning, "Could not record last-seen time of user {UserId}")]
    public static partial void LastSeenFailed(ILogger logger, Exception exception, long userId);
}
