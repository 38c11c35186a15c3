using System.Collections.Concurrent;

namespace Bench.Relay.Relay;

/// <summary>
/// Conversations and their live members, in memory. A message gets its seq and goes to every other member
/// under its conversation's lock, so deliveries leave in seq order; the frame is serialized once for all.
/// </summary>
internal sealed class RelayRooms
{
    private readonly ConcurrentDictionary<long, Room> _rooms = new();
    private long _lastMessageId;

    public void Join(RelayConnection connection, IEnumerable<long> conversationIds)
    {
        foreach (var id in conversationIds)
        {
            var room = _rooms.GetOrAdd(id, static _ => new Room());
            lock (room)
            {
                room.Members = [.. room.Members, connection];
            }
        }
    }

    public void Leave(RelayConnection connection, IEnumerable<long> conversationIds)
    {
        foreach (var id in conversationIds)
        {
            if (_rooms.TryGetValue(id, out var room))
            {
                lock (room)
                {
                    room.Members = Array.FindAll(room.Members, m => !ReferenceEquals(m, connection));
                }
            }
        }
    }

    public ReadyEntry LastSeq(long conversationId) =>
        new(conversationId, _rooms.TryGetValue(conversationId, out var room) ? Volatile.Read(ref room.Seq) : 0);

    /// <summary>Relays the message; returns the sender's ack, or null when the sender is not in the conversation.</summary>
    public byte[]? Publish(RelayConnection sender, ClientMessage message)
    {
        if (!_rooms.TryGetValue(message.ConversationId, out var room))
        {
            return null;
        }
        var now = DateTime.UtcNow;
        lock (room)
        {
            if (Array.IndexOf(room.Members, sender) < 0)
            {
                return null;
            }
            var seq = ++room.Seq;
            var messageId = Interlocked.Increment(ref _lastMessageId);
            var frame = RelayFrames.Message(message, messageId, seq, sender, now);
            foreach (var member in room.Members)
            {
                if (!ReferenceEquals(member, sender))
                {
                    member.Send(frame);
                }
            }
            return RelayFrames.Ack(message.ClientMessageId, messageId, message.ConversationId, seq, now);
        }
    }

    private sealed class Room
    {
        public RelayConnection[] Members = [];
        public long Seq;
    }
}

internal readonly record struct ReadyEntry(long ConversationId, long LastSeq);
