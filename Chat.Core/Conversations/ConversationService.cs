using Chat.Core.Connections;
using Chat.Core.Handlers;
using Chat.Core.Options;
using Chat.Core.Protocol;
using Chat.Data.Conversations;
using Chat.Data.Users;
using Microsoft.Extensions.Options;

namespace Chat.Core.Conversations;

/// <summary>
/// Conversations and their members, for the HTTP API. Every membership change is committed first and then
/// applied to the live connections at once: joiners' connections start receiving the conversation, leavers'
/// stop, and every member's connections get a <c>member</c> frame.
/// </summary>
public sealed class ConversationService(
    ConversationRepository conversations,
    UserRepository users,
    ConnectionRegistry registry,
    IChatPublisher publisher,
    MembershipFences fences,
    TimeProvider time,
    IOptions<ChatLimitsOptions> limits)
{
    // Striped by user id: membership changes are rare, and unrelated users seldom share a stripe.
    private readonly SemaphoreSlim[] _membershipGates = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1))];

    /// <summary>
    /// Creates a conversation of the caller and the named users, or returns the direct conversation they already
    /// share, or the group the caller's <paramref name="idempotencyKey"/> created already.
    /// </summary>
    /// <param name="idempotencyKey">The caller's key for a group's creation (HTTP <c>Idempotency-Key</c>): a retry of
    /// a creation whose answer was lost finds the group instead of making a second. Not needed, and not used, for a
    /// direct conversation, which its two members key.</param>
    public async Task<(ConversationSummary? Conversation, CreateOutcome Outcome)> CreateAsync(
        ConnectedUser caller, string? title, bool isGroup, IReadOnlyCollection<string> memberExternalIds, string? idempotencyKey,
        CancellationToken cancellationToken)
    {
        var others = memberExternalIds.Where(id => id != caller.ExternalId).Distinct().ToArray();
        var profiles = await users.EnsureProfilesAsync(others, cancellationToken);
        long[] memberIds = [caller.UserId, .. profiles.Select(p => p.Id)];
        var directKey = isGroup ? null : ConversationRepository.DirectKey(memberIds[0], memberIds[1]);
        var creation = isGroup && idempotencyKey is not null
            ? (ConversationRepository.CreationKey(caller.UserId, idempotencyKey), Fingerprint(title, others))
            : ((string Key, string Request)?)null;

        // Re-opening a direct conversation brings back a member who had left it, as an addition does: messages the
        // other person stores after that are published after it is applied, so they reach the returning member's
        // sockets, after joined. Only then: clients may ask for a direct conversation every time they show it, and
        // while a fence is up the writer holds back the publication of every batch that holds the conversation,
        // and with it the others' messages in that batch. A new conversation has no sockets and nobody who knows its
        // id yet. (A member who leaves in the moment between this look and the statement is brought back unfenced: a
        // message stored in that instant may then miss their sockets live; catch-up and sync have it.)
        var reopened = directKey is null ? null : await conversations.DirectConversationToReopenAsync(directKey, cancellationToken);
        CreatedConversation created;
        using (reopened is { } reopenedId ? await fences.EnterAsync(reopenedId, cancellationToken) : null)
        {
            // Not cancelled with the request from here on, as for an addition (see ApplyCommittedAsync). The answer is
            // read in the creation's transaction: as created, even when the caller leaves it at once (another request).
            created = await conversations.CreateAsync(title, isGroup, directKey, memberIds, readAs: caller.UserId, creation, CancellationToken.None);
            if (!created.SameRequest)
            {
                return (null, CreateOutcome.KeyUsedForAnotherRequest);
            }
            if (created.Conversation is null)
            {
                return (null, CreateOutcome.KeyConversationLeft);
            }
            // Everyone is subscribed before anyone is told, so that every member hears of every other. Through the
            // membership gates, as adds and removals are: a member who leaves again at once (a direct conversation
            // re-opened just as the other person leaves it) must not be subscribed after their removal was applied.
            // Committed: applied whether or not the caller is still there (see ApplyCommittedAsync).
            await ApplyCommittedAsync(created.ConversationId, created.JoinedUserIds);
            foreach (var userId in created.JoinedUserIds)
            {
                publisher.PublishToConversation(created.ConversationId, FrameWriter.MemberJoined(created.ConversationId, userId, created.JoinedSeq, created.JoinedAt));
            }
        }
        return (created.Conversation, created.Created ? CreateOutcome.Created : CreateOutcome.Existing);
    }

    /// <summary>What a group's creation asked for, as one value: a key given again with another request is refused.</summary>
    private static string Fingerprint(string? title, IEnumerable<string> otherMembers) =>
        Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(
            System.Text.Json.JsonSerializer.Serialize(new { title, members = otherMembers.Order(StringComparer.Ordinal) }))));

    /// <summary>Adds a member to a group the caller belongs to.</summary>
    public async Task<(MembershipOutcome Outcome, UserProfile? Member)> AddMemberAsync(ConnectedUser caller, long conversationId, string externalId, CancellationToken cancellationToken)
    {
        // Checked before a placeholder profile is made, so that a non-member cannot create profiles.
        switch (await conversations.IsGroupForMemberAsync(conversationId, caller.UserId, cancellationToken))
        {
            case null:
                return (MembershipOutcome.NotFound, null);
            case false:
                return (MembershipOutcome.NotGroup, null);
        }
        var member = (await users.EnsureProfilesAsync([externalId], cancellationToken))[0];
        // Messages stored after the addition are published after it is applied: to the new member, after joined.
        using var fence = await fences.EnterAsync(conversationId, cancellationToken);
        // Not cancelled with the request from here on: a hang-up just as the statement commits must not skip applying
        // it to the sockets (see ApplyCommittedAsync). The statement is bounded by the database's own timeouts.
        var result = await conversations.AddMemberAsync(conversationId, caller.UserId, member.Id, limits.Value.MaxConversationMembers, CancellationToken.None);
        if (result.Outcome is MembershipOutcome.Changed or MembershipOutcome.Unchanged)
        {
            // Also when unchanged: a retry whose first attempt committed unseen must still subscribe the sockets.
            await ApplyCommittedAsync(conversationId, [member.Id]);
        }
        // An addition that changed something always says where the member joined.
        if (result is { Outcome: MembershipOutcome.Changed, JoinedSeq: { } joinedSeq })
        {
            publisher.PublishToConversation(conversationId, FrameWriter.MemberJoined(conversationId, member.Id, joinedSeq, result.At));
        }
        return (result.Outcome, member);
    }

    /// <summary>Removes a member: the caller themselves, or another member of a group. Unknown users are not members.</summary>
    public async Task<MembershipOutcome> RemoveMemberAsync(ConnectedUser caller, long conversationId, string externalId, CancellationToken cancellationToken)
    {
        var member = externalId == caller.ExternalId
            ? new UserProfile { Id = caller.UserId, ExternalId = caller.ExternalId, DisplayName = caller.DisplayName }
            : await users.FindByExternalIdAsync(externalId, cancellationToken);
        if (member is null)
        {
            // Not a member: say so only to members of the conversation.
            return (await conversations.IsGroupForMemberAsync(conversationId, caller.UserId, cancellationToken)) is null ? MembershipOutcome.NotFound : MembershipOutcome.Unchanged;
        }
        // A caller who is not a member is answered before the fence: it would hold back the publication of the
        // conversation's messages for a database round trip on each such request, anyone's to send.
        if (!(await conversations.ActiveMembersAmongAsync(conversationId, [caller.UserId], cancellationToken)).Contains(caller.UserId))
        {
            return MembershipOutcome.NotFound;
        }
        // Messages stored after the removal are published after it is applied: never to the member who left.
        using var fence = await fences.EnterAsync(conversationId, cancellationToken);
        // Not cancelled with the request from here on, as for an addition.
        var result = await conversations.RemoveMemberAsync(conversationId, caller.UserId, member.Id, CancellationToken.None);
        if (result.Outcome == MembershipOutcome.Changed)
        {
            // Told first, while their connections still receive the conversation, so the leaver hears it too.
            publisher.PublishToConversation(conversationId, FrameWriter.MemberLeft(conversationId, member.Id, result.At));
        }
        if (result.Outcome is MembershipOutcome.Changed or MembershipOutcome.Unchanged)
        {
            // Also when unchanged: a retry whose first attempt committed unseen must still cut the sockets off.
            await ApplyCommittedAsync(conversationId, [member.Id]);
        }
        return result.Outcome;
    }

    /// <summary>
    /// Applies a change that has committed. Not cancelled with the request: a caller that hangs up after the commit
    /// (or a deadline) would otherwise leave a removed member's sockets receiving the conversation, and an added
    /// one's not receiving it, until they reconnect, with nobody left to retry. The database work is bounded by its
    /// own timeouts and retries.
    /// </summary>
    private Task ApplyCommittedAsync(long conversationId, IReadOnlyCollection<long> userIds) =>
        ApplyMembershipAsync(conversationId, userIds, CancellationToken.None);

    /// <summary>
    /// Makes the users' live connections receive the conversation exactly when the database says they are active
    /// members. Changes for one user are applied one at a time, each from a fresh read, so two changes that commit
    /// in one order can never be applied to the sockets in the other. The users' gates are taken in ascending
    /// order, so that a whole group's creation holds them at once without deadlocking, and read in one query.
    /// </summary>
    private async Task ApplyMembershipAsync(long conversationId, IReadOnlyCollection<long> userIds, CancellationToken cancellationToken)
    {
        // A direct conversation found as it was, or a group found by its creation key: nobody joined, nothing to read.
        if (userIds.Count == 0)
        {
            return;
        }
        var gates = userIds.Select(id => (int)((ulong)id % (ulong)_membershipGates.Length)).Distinct().Order().Select(i => _membershipGates[i]).ToList();
        var held = 0;
        try
        {
            foreach (var gate in gates)
            {
                await gate.WaitAsync(cancellationToken);
                held++;
            }
            var active = await conversations.ActiveMembersAmongAsync(conversationId, userIds, cancellationToken);
            var now = time.GetUtcNow().UtcDateTime;
            foreach (var userId in userIds)
            {
                if (active.Contains(userId))
                {
                    registry.Join(userId, conversationId);
                    continue;
                }
                foreach (var connection in registry.Leave(userId, conversationId))
                {
                    // A leaver who was typing there stops, as when a connection closes.
                    connection.Typing.Stop(conversationId, () =>
                        TypingHandler.Publish(registry, publisher, connection, conversationId, isTyping: false, now));
                }
            }
        }
        finally
        {
            foreach (var gate in gates.Take(held))
            {
                gate.Release();
            }
        }
    }

    public Task<ConversationPage> ListAsync(ConnectedUser caller, (DateTime ActivityAt, long Id)? after, int limit, CancellationToken cancellationToken) =>
        conversations.ListAsync(caller.UserId, after, limit, cancellationToken);

    public Task<ConversationSummary?> GetAsync(ConnectedUser caller, long conversationId, CancellationToken cancellationToken) =>
        conversations.GetAsync(conversationId, caller.UserId, cancellationToken);

    /// <summary>A user's presence as the WebSocket would announce it now.</summary>
    public PresenceStatus PresenceOf(long userId) => registry.PresenceOf(userId);

}
