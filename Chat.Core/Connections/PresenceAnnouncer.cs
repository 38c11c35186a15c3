using Chat.Core.Protocol;

namespace Chat.Core.Connections;

/// <summary>
/// Every change of a user's status goes through here: a device going live, setting a status, or leaving. The
/// change is made in the registry and its frame queued to the recipients under one lock, so that observers and the
/// user's own devices get a user's announcements in the order the registry made them and the last one they get is
/// the user's status. (Had two devices' changes been queued in the other order, they would keep the older status.)
/// A device going live reads the user's status under the same lock, for its <c>ready</c>: every change after that
/// one reaches it. Queuing never blocks, so the lock is held for one fan-out at most.
/// </summary>
/// <remarks>
/// A frame goes through the <see cref="IChatPublisher"/>, in two calls made under the lock: to every connection of
/// every user who has one subscribed to a conversation of the user's (<see cref="IChatPublisher.PublishToUsersIn"/>:
/// once per connection however many conversations they share; one still in its catch-up gets it after its
/// <c>ready</c>), and to the user's own live connections (<see cref="IChatPublisher.PublishToOwnDevices"/>). The frame
/// is serialized once: it says the same to both, <c>senderId</c> being the user. The registry is asked only for the
/// user's state: their status and their conversations.
/// </remarks>
public sealed class PresenceAnnouncer(ConnectionRegistry registry, IChatPublisher publisher, TimeProvider time)
{
    private readonly Lock _lock = new();

    /// <summary>
    /// The connection finished its catch-up: announces the user's status if that changed (the user comes online).
    /// Returns the user's status now, for the connection's <c>ready</c>.
    /// </summary>
    public PresenceStatus MarkLive(ChatConnection connection)
    {
        lock (_lock)
        {
            if (registry.MarkLive(connection) is { } status)
            {
                Announce(connection, status, registry.ConversationsOf(connection.UserId));
            }
            return registry.PresenceOf(connection.UserId);
        }
    }

    /// <summary>Records a status the connection set; announces the user's status if that changed.</summary>
    public PresenceStatus? SetPresence(ChatConnection connection, PresenceStatus status)
    {
        lock (_lock)
        {
            var changed = registry.SetPresence(connection, status);
            if (changed is { } now)
            {
                Announce(connection, now, registry.ConversationsOf(connection.UserId));
            }
            return changed;
        }
    }

    /// <summary>Unregisters the connection; announces the user's status if its departure changed that.</summary>
    public Departure Unregister(ChatConnection connection)
    {
        lock (_lock)
        {
            var departure = registry.Unregister(connection);
            if (departure.ChangedStatus is { } status)
            {
                // The registry no longer counts the departed connection's conversations as the user's.
                Announce(connection, status, [.. departure.Conversations, .. registry.ConversationsOf(connection.UserId)]);
            }
            return departure;
        }
    }

    /// <param name="source">The connection whose going live, status or departure made the change.</param>
    private void Announce(ChatConnection source, PresenceStatus status, IEnumerable<long> conversations)
    {
        var user = source.User;
        OutboundFrame frame = FrameWriter.Presence(user.UserId, user.DisplayName, status, time.GetUtcNow().UtcDateTime);
        publisher.PublishToUsersIn(conversations, frame, exceptUserId: user.UserId);
        publisher.PublishToOwnDevices(source, frame);
    }
}
