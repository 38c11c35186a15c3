using System.Diagnostics;

namespace Bench.LoadGen.Measurement;

/// <summary>
/// Where the clients of one load report what came back. Each event names the stamp of the message it is about,
/// so it lands in that message's phase whenever it arrives. Called concurrently from every receive loop.
/// </summary>
public sealed class LoadEvents
{
    private readonly PhaseRegistry _phases;
    private readonly IReadOnlyDictionary<long, int> _membersPerConversation;
    private long _stray;
    private long _connectionsLost;
    private string? _lastFailure;

    internal LoadEvents(PhaseRegistry phases, IReadOnlyDictionary<long, int> membersPerConversation)
    {
        _phases = phases;
        _membersPerConversation = membersPerConversation;
    }

    /// <summary>Acks and deliveries whose stamp names no phase of this load (should stay 0).</summary>
    public long Stray => Volatile.Read(ref _stray);

    /// <summary>Connections that closed while the load was running (should stay 0).</summary>
    public long ConnectionsLost => Volatile.Read(ref _connectionsLost);

    /// <summary>The last refusal or failure reported, for the log.</summary>
    public string? LastFailure => Volatile.Read(ref _lastFailure);

    public void Acked(Stamp stamp, long conversationId)
    {
        var now = Stopwatch.GetTimestamp();
        if (_phases.Find(stamp.Phase) is { } phase && _membersPerConversation.TryGetValue(conversationId, out var members))
        {
            phase.RecordAck(now - stamp.ScheduledAt, members - 1);
        }
        else
        {
            Interlocked.Increment(ref _stray);
        }
    }

    /// <summary>A message is being written to its socket now.</summary>
    public void Sending(Stamp stamp)
    {
        var now = Stopwatch.GetTimestamp();
        _phases.Find(stamp.Phase)?.RecordSendLag(now - stamp.ScheduledAt);
    }

    public void Delivered(Stamp stamp, bool inOrder)
    {
        var now = Stopwatch.GetTimestamp();
        if (_phases.Find(stamp.Phase) is { } phase)
        {
            phase.RecordDelivery(now - stamp.ScheduledAt, inOrder);
        }
        else
        {
            Interlocked.Increment(ref _stray);
        }
    }

    public void Failed(Stamp stamp, string reason)
    {
        Volatile.Write(ref _lastFailure, reason);
        if (_phases.Find(stamp.Phase) is { } phase)
        {
            phase.RecordFailure();
        }
        else
        {
            Interlocked.Increment(ref _stray);
        }
    }

    public void ConnectionLost(string reason)
    {
        Volatile.Write(ref _lastFailure, reason);
        Interlocked.Increment(ref _connectionsLost);
    }
}
