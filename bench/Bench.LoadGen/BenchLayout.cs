using System.Collections.Frozen;

namespace Bench.LoadGen;

/// <summary>A simulated user: the database id, the token subject and the name others see.</summary>
public sealed record BenchUser(long Id, string ExternalId, string DisplayName);

/// <summary>A conversation and its members; every member holds one connection during a load.</summary>
public sealed record BenchConversation(long Id, IReadOnlyList<BenchUser> Members);

/// <summary>Who talks to whom: users, each in exactly one conversation.</summary>
public sealed class BenchLayout
{
    public BenchLayout(IReadOnlyList<BenchConversation> conversations)
    {
        Conversations = conversations;
        var users = new List<(BenchUser User, long ConversationId)>();
        foreach (var conversation in conversations)
        {
            foreach (var member in conversation.Members)
            {
                users.Add((member, conversation.Id));
            }
        }
        if (users.Select(u => u.User.Id).Distinct().Count() != users.Count)
        {
            throw new ArgumentException("A user may belong to one conversation of a layout only.", nameof(conversations));
        }
        Users = users;
        MembersPerConversation = conversations.ToFrozenDictionary(c => c.Id, c => c.Members.Count);
    }

    public IReadOnlyList<BenchConversation> Conversations { get; }

    /// <summary>Every user with the conversation it belongs to, conversation by conversation.</summary>
    public IReadOnlyList<(BenchUser User, long ConversationId)> Users { get; }

    public IReadOnlyDictionary<long, int> MembersPerConversation { get; }

    /// <summary>Members per conversation when they are all the same size (the scenarios' case), else the largest.</summary>
    public int GroupSize => Conversations.Count == 0 ? 0 : Conversations.Max(c => c.Members.Count);
}
