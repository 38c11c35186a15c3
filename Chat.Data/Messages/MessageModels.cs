namespace Chat.Data.Messages;

public sealed record NewMessage(
    long ConversationId,
    long SenderId,
    string ClientMessageId,
    string Content,
    string MessageType,
    long? ReplyToMessageId,
    string? MediaUrl,
    string Preview);

public enum StoreOutcome
{
    /// <summary>Committed now, with the conversation's next seq.</summary>
    Stored,
    /// <summary>The sender already used this client message id: the original message is returned.</summary>
    Duplicate,
    /// <summary>The sender is not an active member of the conversation (or it does not exist).</summary>
    NotMember,
    /// <summary><c>replyToMessageId</c> is not a message of the same conversation.</summary>
    BadReply,
}

public sealed record StoreResult(StoreOutcome Outcome, long MessageId, long ConversationId, long Seq, DateTime CreatedAt);

/// <summary>A stored message with its sender's profile, as catch-up and replay deliver it.</summary>
public sealed class StoredMessage
{
    public long MessageId { get; init; }
    public long ConversationId { get; init; }
    public long Seq { get; init; }
    public long SenderId { get; init; }
    public required string SenderName { get; init; }
    public string? SenderAvatarUrl { get; init; }
    public required string Content { get; init; }
    public required string MessageType { get; init; }
    public long? ReplyToMessageId { get; init; }
    public string? MediaUrl { get; init; }
    public required string ClientMessageId { get; init; }
    public DateTime CreatedAt { get; init; }
    /// <summary>Time of the last edit; null when never edited.</summary>
    public DateTime? EditedAt { get; init; }
    /// <summary>The position of its latest edit among the conversation's changes; null when never changed.</summary>
    public long? ChangeSeq { get; init; }
}

/// <summary>A participant's view of one conversation when catch-up ran.</summary>
public sealed class ConversationState
{
    public long ConversationId { get; init; }
    public long LastSeq { get; init; }
    public int UnreadCount { get; init; }
    /// <summary>The conversation's latest change (edit or delete) position, from which <c>sync</c> replays changes.</summary>
    public long LastChangeSeq { get; init; }
}

public sealed record Catchup(IReadOnlyList<StoredMessage> Messages, IReadOnlyList<ConversationState> Conversations);
