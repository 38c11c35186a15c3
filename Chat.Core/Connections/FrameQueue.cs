namespace Chat.Core.Connections;

/// <summary>
/// A first-in first-out queue of frames for many producers and one consumer, without a lock: a producer swaps
/// itself in as the tail, then links the old tail to it. An empty queue holds one small node and nothing else,
/// which matters for a gateway that keeps thousands of idle connections.
/// </summary>
/// <remarks>
/// Between a producer's swap and its link, the consumer sees the queue end at the old tail. That is safe for
/// <see cref="ChatConnection"/>: every producer, once linked, asks for the writer to run, and the writer looks at
/// the queue again after saying it stopped (see <c>ChatConnection.DrainAsync</c>).
/// </remarks>
internal sealed class FrameQueue
{
    private Node _head;
    private Node _tail;

    public FrameQueue()
    {
        _head = _tail = new Node(default);
    }

    /// <summary>Adds a frame; safe from any number of threads at once.</summary>
    public void Enqueue(OutboundFrame frame)
    {
        var node = new Node(frame);
        var previous = Interlocked.Exchange(ref _tail, node);
        Volatile.Write(ref previous.Next, node);
    }

    /// <summary>Takes the oldest linked frame; only the consumer calls this.</summary>
    public bool TryDequeue(out OutboundFrame frame)
    {
        var next = Volatile.Read(ref _head.Next);
        if (next is null)
        {
            frame = default;
            return false;
        }
        frame = next.Frame;
        // The node becomes the new empty head: drop its payload so the queue keeps no frame alive.
        next.Frame = default;
        _head = next;
        return true;
    }

    /// <summary>Whether a linked frame is waiting; only the consumer calls this.</summary>
    public bool HasLinked => Volatile.Read(ref _head.Next) is not null;

    private sealed class Node(OutboundFrame frame)
    {
        public OutboundFrame Frame = frame;
        public Node? Next;
    }
}
