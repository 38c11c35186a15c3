namespace Chat.Core.Connections;

/// <summary>
/// Publishes a conversation's messages in seq order. Handlers commit concurrently and may come back from the
/// database in any order: the one that committed seq 6 can reach this point before the one with seq 5.
/// </summary>
/// <remarks>
/// Each store is bracketed by <see cref="Enter"/>, which hands out a ticket, and <see cref="Leave"/>. A committed
/// message is published at once when it is the next expected seq. Otherwise it waits only for the stores that
/// had entered before it left: a store that enters later starts its statement after this commit and can only
/// get a higher seq, so a steady stream of new stores never holds it back. A seq that never arrives (a commit
/// whose reply was lost with its database connection) delays the next ones no longer than the stores in flight
/// beside it. State exists only while a conversation has stores in flight or messages waiting.
/// </remarks>
public sealed class ConversationSequencer(IChatPublisher publisher)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<long, State> _states = [];

    /// <summary>Call before the store that will assign a seq in this conversation; pass the ticket to <see cref="Leave"/>.</summary>
    public long Enter(long conversationId)
    {
        lock (_lock)
        {
            if (!_states.TryGetValue(conversationId, out var state))
            {
                state = new State();
                _states.Add(conversationId, state);
            }
            var ticket = ++state.LastTicket;
            state.InFlight.Add(ticket);
            return ticket;
        }
    }

    /// <summary>
    /// Call after the store, with the committed message to publish, or with null when nothing was committed
    /// (a duplicate, a refusal, a failure). Publishing happens under the lock so that two releases never interleave.
    /// </summary>
    public void Leave(long conversationId, long ticket, Publication? committed)
    {
        lock (_lock)
        {
            var state = _states[conversationId];
            state.InFlight.Remove(ticket);
            if (committed is { } publication)
            {
                // Only stores that entered up to now could still commit a smaller seq.
                state.Pending.Add(publication.Seq, (publication, Barrier: state.LastTicket));
            }

            while (state.Pending.Count > 0)
            {
                var seq = state.Pending.Keys[0];
                var (next, barrier) = state.Pending.Values[0];
                var isNext = state.NextSeq != 0 && seq <= state.NextSeq;
                var nothingEarlierInFlight = state.InFlight.Count == 0 || state.InFlight.Min > barrier;
                if (!isNext && !nothingEarlierInFlight)
                {
                    break;
                }
                state.Pending.RemoveAt(0);
                state.NextSeq = seq + 1;
                publisher.PublishToConversation(conversationId, next.Frame, next.Except);
            }

            if (state.InFlight.Count == 0 && state.Pending.Count == 0)
            {
                _states.Remove(conversationId);
            }
        }
    }

    /// <summary>Conversations with stores in flight or messages waiting; zero when idle (nothing leaks).</summary>
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
        public long LastTicket;
        public long NextSeq;
        public SortedSet<long> InFlight { get; } = [];
        public SortedList<long, (Publication Publication, long Barrier)> Pending { get; } = [];
    }
}

/// <summary>A committed message ready to go out: its seq, its serialized frame, and the connection that sent it.</summary>
public readonly record struct Publication(long Seq, OutboundFrame Frame, ChatConnection? Except);
