namespace Chat.Core.Connections;

/// <summary>
/// Publishes a conversation's messages in seq order. Handlers commit concurrently and may come back from the
/// database in any order: the one that committed seq 6 can reach this point before the one with seq 5. Each
/// store is bracketed by <see cref="Enter"/> and <see cref="Leave"/>; a committed message waits here while an
/// earlier seq may still be in flight, and everything pending is released, in order, once nothing is.
/// </summary>
/// <remarks>
/// A seq that never arrives (a commit whose reply was lost with its connection) cannot stall delivery for
/// longer than the stores in flight beside it. State exists only while a conversation has stores in flight.
/// </remarks>
public sealed class ConversationSequencer(IChatPublisher publisher)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<long, State> _states = [];

    /// <summary>Call before the store that will assign a seq in this conversation.</summary>
    public void Enter(long conversationId)
    {
        lock (_lock)
        {
            if (!_states.TryGetValue(conversationId, out var state))
            {
                state = new State();
                _states.Add(conversationId, state);
            }
            state.InFlight++;
        }
    }

    /// <summary>
    /// Call after the store, with the committed message to publish, or with null when nothing was committed
    /// (a duplicate, a refusal, a failure). Publishing happens under the lock so that two releases never interleave.
    /// </summary>
    public void Leave(long conversationId, Publication? committed)
    {
        lock (_lock)
        {
            var state = _states[conversationId];
            state.InFlight--;
            if (committed is { } publication)
            {
                state.Pending.Add(publication.Seq, publication);
            }

            while (state.Pending.Count > 0)
            {
                var (seq, next) = (state.Pending.Keys[0], state.Pending.Values[0]);
                // Release when it is the next expected seq (or older), or when no store is left that could
                // hold a smaller one.
                var inOrder = state.NextSeq != 0 && seq <= state.NextSeq;
                if (!inOrder && state.InFlight > 0)
                {
                    break;
                }
                state.Pending.RemoveAt(0);
                state.NextSeq = seq + 1;
                publisher.PublishToConversation(conversationId, next.Frame, next.Except);
            }

            if (state.InFlight == 0 && state.Pending.Count == 0)
            {
                _states.Remove(conversationId);
            }
        }
    }

    /// <summary>Conversations with stores in flight; zero when idle (nothing leaks).</summary>
    public int ActiveConversations
    {
        get
        {
            lock (_lock)
            {
                return _states.Count;
            }
        }
    }

    private sealed class State
    {
        public int InFlight;
        public long NextSeq;
        public SortedList<long, Publication> Pending { get; } = [];
    }
}

/// <summary>A committed message ready to go out: its seq, its serialized frame, and the connection that sent it.</summary>
public readonly record struct Publication(long Seq, OutboundFrame Frame, ChatConnection? Except);
