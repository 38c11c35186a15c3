namespace Chat.Core.Protocol;

/// <summary>A frame a client sent, parsed and checked for shape. Membership and existence are the handlers' business.</summary>
public abstract record ClientFrame
{
    /// <summary>The frame's <c>type</c> on the wire.</summary>
    public abstract string Type { get; }
}

/// <param name="ClientMessageId">The sender's idempotency key; the reader makes one when the client sent none.</param>
public sealed record SendMessageFrame(
    long ConversationId,
    string ClientMessageId,
    string Content,
    string MessageType,
    long? ReplyToMessageId,
    string? MediaUrl) : ClientFrame
{
    public override string Type => "message";
}

public sealed record TypingFrame(long ConversationId, bool IsTyping) : ClientFrame
{
    public override string Type => "typing";
}

public sealed record ReadFrame(long ConversationId, long MessageId) : ClientFrame
{
    public override string Type => "read";
}

public sealed record PresenceFrame(PresenceStatus Status) : ClientFrame
{
    public override string Type => "presence";
}

/// <summary>Replay of the messages after <paramref name="AfterSeq"/>, from the database.</summary>
/// <param name="AfterChangeSeq">When given, the edits and deletes of messages up to <paramref name="AfterSeq"/> made after this change are replayed first.</param>
public sealed record SyncFrame(long ConversationId, long AfterSeq, int Limit, long? AfterChangeSeq = null) : ClientFrame
{
    public override string Type => "sync";

    public const int DefaultLimit = 100;
    public const int MaxLimit = 500;
}

public sealed record EditFrame(long ConversationId, long MessageId, string Content) : ClientFrame
{
    public override string Type => "edit";
}

public sealed record DeleteFrame(long ConversationId, long MessageId) : ClientFrame
{
    public override string Type => "delete";
}

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
    public const string RateLimited = "rate_limited";

    public static IReadOnlyList<string> All { get; } = [BadRequest, UnknownType, AccessDenied, NotFound, Internal, RateLimited];
}

/// <summary>Why a frame was refused; becomes an <c>error</c> frame.</summary>
/// <param name="RetryAfterMs">For <c>rate_limited</c>: how long to wait before sending that kind of frame again.</param>
/// <remarks>
/// <see cref="FrameType"/>, <see cref="ConversationId"/> and <see cref="MessageId"/> name the refused frame, so that
/// a client with several requests out (two syncs, an edit and a delete) knows which one failed: answers come back
/// in order, but not every frame has an answer when it succeeds (typing has none), so order alone cannot tell.
/// </remarks>
public sealed record FrameError(string Code, string Message, string? ClientMessageId = null, long? RetryAfterMs = null)
{
    /// <summary>The refused frame's <c>type</c>, when it was one the server knows.</summary>
    public string? FrameType { get; init; }

    /// <summary>The refused frame's <c>conversationId</c>, when it had a valid one.</summary>
    public long? ConversationId { get; init; }

    /// <summary>The refused frame's <c>messageId</c> (<c>read</c>, <c>edit</c>, <c>delete</c>), when it had a valid one.</summary>
    public long? MessageId { get; init; }

    /// <summary>An error about a frame that was read: it names the frame's type, target and key.</summary>
    public static FrameError About(ClientFrame frame, string code, string message, long? retryAfterMs = null)
    {
        var error = new FrameError(code, message, (frame as SendMessageFrame)?.ClientMessageId, retryAfterMs);
        return frame switch
        {
            SendMessageFrame f => error with { FrameType = f.Type, ConversationId = f.ConversationId },
            TypingFrame f => error with { FrameType = f.Type, ConversationId = f.ConversationId },
            ReadFrame f => error with { FrameType = f.Type, ConversationId = f.ConversationId, MessageId = f.MessageId },
            SyncFrame f => error with { FrameType = f.Type, ConversationId = f.ConversationId },
            EditFrame f => error with { FrameType = f.Type, ConversationId = f.ConversationId, MessageId = f.MessageId },
            DeleteFrame f => error with { FrameType = f.Type, ConversationId = f.ConversationId, MessageId = f.MessageId },
            _ => error with { FrameType = frame.Type },
        };
    }
}
