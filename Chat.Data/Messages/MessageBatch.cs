namespace Chat.Data.Messages;

/// <summary>What a message says, apart from who sent it where.</summary>
public sealed record MessageBody(string Content, string MessageType, long? ReplyToMessageId, string? MediaUrl)
{
    /// <summary>When it was last edited; null when never edited.</summary>
    public DateTime? EditedAt { get; init; }

    /// <summary>The position of its latest edit or deletion among the conversation's changes; null when never changed.</summary>
    public long? ChangeSeq { get; init; }
}

/// <summary>
/// One message's outcome in a stored batch. <see cref="Twin"/> is set for a duplicate whose original was never
/// published by the caller (its id is above the <c>publishedUpTo</c> it passed): what the original said, since the
/// repeat's own fields may differ from it.
/// </summary>
public sealed record BatchItemResult(StoreResult Result, MessageBody? Twin);
