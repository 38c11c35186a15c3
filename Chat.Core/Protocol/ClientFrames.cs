namespace Chat.Core.Protocol;

/// <summary>A frame a client sent, parsed and checked for shape. Membership and existence are the handlers' business.</summary>
public abstract record ClientFrame;

/// <param name="ClientMessageId">The sender's idempotency key; the reader makes one when the client sent none.</param>
public sealed record SendMessageFrame(
    long ConversationId,
    string ClientMessageId,
    string Content,
    string MessageType,
    long? ReplyToMessageId,
    string? MediaUrl) : ClientFrame;

public sealed record TypingFrame(long ConversationId, bool IsTyping) : ClientFrame;

public sealed record ReadFrame(long ConversationId, long MessageId) : ClientFrame;

public sealed record PresenceFrame(PresenceStatus Status) : ClientFrame;

/// <summary>Replay of the messages after <paramref name="AfterSeq"/>, from the database.</summary>
public sealed record SyncFrame(long ConversationId, long AfterSeq, int Limit) : ClientFrame
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 500;
}

public sealed record EditFrame(long ConversationId, long MessageId, string Content) : ClientFrame;

public sealed record DeleteFrame(long ConversationId, long MessageId) : ClientFrame;

public enum PresenceStatus
{
    Online,
    Away,
    Busy,
    Offline,
}

/// <summary>The <c>code</c> of an <c>error</c> frame.</summary>
public static class ErrorCodes
{
    public const string BadRequest = "bad_request";
    public const string UnknownType = "unknown_type";
    public const string AccessDenied = "access_denied";
    public const string NotFound = "not_found";
    public const string Internal = "internal";
}

/// <summary>Why a frame was refused; becomes an <c>error</c> frame.</summary>
public sealed record FrameError(string Code, string Message, string? ClientMessageId = null);
