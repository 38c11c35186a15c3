namespace Chat.Core.Conversations;

/// <summary>What asking for a conversation came to.</summary>
public enum CreateOutcome
{
    /// <summary>A new conversation.</summary>
    Created,

    /// <summary>The direct conversation of the two members, or the group the caller's key created already, as it is now.</summary>
    Existing,

    /// <summary>The caller's key created a group for another request (other members or title): nothing was done.</summary>
    KeyUsedForAnotherRequest,

    /// <summary>The caller's key created a group that the caller has left since: nothing was done.</summary>
    KeyConversationLeft,
}
