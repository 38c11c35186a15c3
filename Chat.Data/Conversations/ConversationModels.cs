namespace Chat.Data.Conversations;

public sealed class CreatedConversation
{
    public long ConversationId { get; init; }

    /// <summary>False when an existing direct conversation was returned.</summary>
    public bool Created { get; init; }

    /// <summary>The members that became active now: all of them for a new conversation, those who had left for an existing one.</summary>
    public long[] JoinedUserIds { get; init; } = [];

    /// <summary>When they joined, as stored (<c>joined_at</c>): the time of the statement that made them members, after it waited for the conversation's row.</summary>
    public DateTime JoinedAt { get; init; }

    /// <summary>
    /// Where they joined (<c>joined_seq</c>, the same for all of them): the conversation's last seq when the statement
    /// made them members, their read position until their first <c>read</c>; 0 for a new conversation.
    /// </summary>
    public long JoinedSeq { get; init; }

    /// <summary>
    /// For a group created with a creation key: false when the key had created a conversation already, for a request
    /// with other members, title or kind (its fingerprint differs).
    /// </summary>
    public bool SameRequest { get; init; } = true;

    /// <summary>
    /// The conversation as the member it was read for saw it when the creation committed, when one was asked for;
    /// null when a creation key found a conversation of another request, or one the member has left.
    /// </summary>
    public ConversationSummary? Conversation { get; set; }
}

/// <summary>A conversation as one member sees it: the shared fields and their own unread count.</summary>
public sealed class ConversationSummary
{
    public long ConversationId { get; init; }
    public string? Title { get; init; }
    public bool IsGroup { get; init; }
    public DateTime CreatedAt { get; init; }
    public long LastSeq { get; init; }
    public DateTime? LastMessageAt { get; init; }
    public string? LastMessagePreview { get; init; }
    /// <summary>Who sent the message of the preview (null with no preview).</summary>
    public long? LastMessageSenderId { get; init; }
    public string? LastMessageSenderName { get; init; }
    public int UnreadCount { get; init; }
    /// <summary>The last message's time, or the creation time: what the list is ordered by.</summary>
    public DateTime ActivityAt { get; init; }
    /// <summary>How many active members the conversation has.</summary>
    public int MemberCount { get; init; }
    /// <summary>Active members, by user id: all of them, or in the list the first few.</summary>
    public IReadOnlyList<ConversationMember> Members { get; set; } = [];
}

public sealed class ConversationMember
{
    public long ConversationId { get; init; }
    public long UserId { get; init; }
    public required string ExternalId { get; init; }
    public required string DisplayName { get; init; }
    public string? AvatarUrl { get; init; }
    public DateTime? LastSeenAt { get; init; }
}

public sealed record ConversationPage(IReadOnlyList<ConversationSummary> Conversations, bool HasMore);

public enum MembershipOutcome
{
    /// <summary>The member was added (or came back) / removed now.</summary>
    Changed,
    /// <summary>Already a member (add) / not a member (remove): nothing changed.</summary>
    Unchanged,
    /// <summary>The actor is not an active member of the conversation, or it does not exist.</summary>
    NotFound,
    /// <summary>The conversation is direct: no members are added, and nobody removes the other person.</summary>
    NotGroup,
    /// <summary>Add only: the group has as many active members as it may have.</summary>
    Full,
}

/// <param name="JoinedSeq">
/// For an addition that changed something: where the member joined (<c>joined_seq</c>), the conversation's last seq
/// when they became a member, their read position until their first <c>read</c>. Null otherwise.
/// </param>
public sealed record MembershipResult(MembershipOutcome Outcome, DateTime At, long? JoinedSeq = null);
