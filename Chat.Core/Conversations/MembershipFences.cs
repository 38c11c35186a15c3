namespace Chat.Core.Conversations;

/// <summary>
/// Holds back the publication of a conversation's messages while a change of its membership is committed and applied
/// to the live connections. The database orders the change and the messages (both take the conversation's row), but
/// the message writer publishes as soon as its batch commits, and applying the change to the sockets takes a moment
/// after its own commit: without the fence, a message stored just after a removal reached the removed member's
/// sockets, and one stored just after an addition missed the new member's.
/// </summary>
/// <remarks>
/// A change enters the fence before its statement runs and leaves it once its sockets are subscribed or cut off and
/// its <c>member</c> frame is queued. The writer, before it publishes a batch, waits for the fences of the batch's
/// conversations to open: a message committed after the change is then published after it (never to a leaver,
/// always to a joiner, after <c>joined</c> or <c>left</c>). The price is that a message committed just before the
/// change but published while it is applied is published after it too, so a leaver may not receive it live (the
/// others do), and a joiner may receive it though it precedes their joining (their history shows it anyway).
/// Changes are rare; a batch with no fenced conversation waits for nothing.
/// </remarks>
public sealed class MembershipFences
{
    /// <summary>
    /// The longest the writer waits for one fence. A change is a few milliseconds of database work; one held up
    /// (its database calls hanging) must not stop the publication of every conversation, so past this the batch is
    /// published as it would have been without the fence.
    /// </summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(2);

    private readonly Lock _lock = new();
    private readonly Dictionary<long, Fence> _fences = [];

    // _fences.Count, readable without the lock: the writer asks it for every batch, and nearly always it is 0. A
    // change that enters just after a 0 was read commits after that batch did, so the batch need not wait for it.
    private int _fenced;

    /// <summary>Whether any conversation is fenced now; when not, a batch has nothing to wait for.</summary>
    public bool AnyFenced => Volatile.Read(ref _fenced) > 0;

    /// <summary>Whether a change of the conversation is inside its fence, or waiting to enter it, now.</summary>
    public bool IsFenced(long conversationId)
    {
        if (!AnyFenced)
        {
            return false;
        }
        lock (_lock)
        {
            return _fences.ContainsKey(conversationId);
        }
    }

    /// <summary>Enters the conversation's fence (after any change of it already inside); dispose to leave.</summary>
    public async Task<IDisposable> EnterAsync(long conversationId, CancellationToken cancellationToken)
    {
        Fence fence;
        lock (_lock)
        {
            if (!_fences.TryGetValue(conversationId, out fence!))
            {
                fence = _fences[conversationId] = new Fence(this, conversationId);
                Volatile.Write(ref _fenced, _fences.Count);
            }
            fence.Users++;
        }
        try
        {
            await fence.Gate.WaitAsync(cancellationToken);
        }
        catch
        {
            Forget(fence);
            throw;
        }
        return fence;
    }

    /// <summary>
    /// Completes when no change of the conversation is inside its fence: at once, without a lock, when no fence is up.
    /// For what is published beside the writer's batches (edits, deletes, receipts, typing), which must not reach a
    /// leaver either.
    /// </summary>
    public ValueTask WaitOpenAsync(long conversationId) => AnyFenced ? WaitOpenAsync([conversationId]) : ValueTask.CompletedTask;

    /// <summary>
    /// Completes when no change of any of these conversations is inside its fence (at once when none is), or after
    /// <see cref="MaxWait"/> for a fence that stays closed.
    /// </summary>
    public async ValueTask WaitOpenAsync(IEnumerable<long> conversationIds)
    {
        foreach (var conversationId in conversationIds)
        {
            Fence? fence;
            lock (_lock)
            {
                if (_fences.Count == 0)
                {
                    return;
                }
                if (!_fences.TryGetValue(conversationId, out fence))
                {
                    continue;
                }
                fence.Users++;
            }
            // Through the gate, as a change would go: open once every change that entered before has left.
            if (await fence.Gate.WaitAsync(MaxWait))
            {
                fence.Gate.Release();
            }
            Forget(fence);
        }
    }

    private void Forget(Fence fence)
    {
        lock (_lock)
        {
            if (--fence.Users == 0)
            {
                _fences.Remove(fence.ConversationId);
                Volatile.Write(ref _fenced, _fences.Count);
            }
        }
    }

    private sealed class Fence(MembershipFences owner, long conversationId) : IDisposable
    {
        public long ConversationId { get; } = conversationId;
        public SemaphoreSlim Gate { get; } = new(1, 1);

        /// <summary>Changes inside or waiting, and writers waiting; guarded by the owner's lock.</summary>
        public int Users { get; set; }

        public void Dispose()
        {
            Gate.Release();
            owner.Forget(this);
        }
    }
}
