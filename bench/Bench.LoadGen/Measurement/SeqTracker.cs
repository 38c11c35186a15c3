namespace Bench.LoadGen.Measurement;

/// <summary>
/// One receiver's view of order: per conversation, the highest seq delivered so far. A delivery at or below it
/// arrived out of order (or twice). Used by one receive loop only, so it takes no lock.
/// </summary>
internal sealed class SeqTracker
{
    private readonly Dictionary<long, long> _highest = [];

    /// <summary>Records a delivery; true when it came after every earlier one of its conversation.</summary>
    public bool Observe(long conversationId, long seq)
    {
        ref var highest = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_highest, conversationId, out _);
        if (seq <= highest)
        {
            return false;
        }
        highest = seq;
        return true;
    }
}
