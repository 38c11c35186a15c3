using System.Collections.Concurrent;
using Chat.Core.Metrics;
using Chat.Core.Protocol;

namespace Chat.Core.Connections;

/// <summary>
/// Which connections are open, whose they are, which conversations each receives, and each user's presence; and the
/// <see cref="IChatPublisher"/> of a gateway that runs alone. One instance per gateway (a DI singleton). Mutations
/// take one lock; fan-out reads copy-on-write arrays without locking, so publishing to a conversation costs a
/// dictionary lookup and one enqueue per recipient.
/// </summary>
/// <remarks>
/// A connection is registered from its welcome to its close, and subscribed to its conversations before its
/// catch-up: it receives from then on (frames held until its <c>ready</c>). It is <em>live</em>, and counts for its
/// user's status, only from <see cref="MarkLive"/>.
/// </remarks>
public sealed class ConnectionRegistry : IChatPublisher
{
    private readonly Lock _lock = new();
    private readonly ConcurrentDictionary<long, ChatConnection[]> _subscribers = new();
    private readonly Dictionary<long, UserEntry> _users = [];
    private long _nextConnectionId;
    private long _presenceClock;
    private readonly ChatMetrics? _metrics;

    public ConnectionRegistry(ChatMetrics? metrics = null)
    {
        _metrics = metrics;
        metrics?.AddGauge("chat.connections", "Open sockets.", () => ConnectionCount);
        metrics?.AddGauge("chat.users.online", "Users with at least one open socket.", () => OnlineUserCount);
        metrics?.AddGauge("chat.conversations.live", "Conversations that at least one open socket receives.", () => ConversationCount);
    }

    public long NextConnectionId() => Interlocked.Increment(ref _nextConnectionId);

    /// <summary>
    /// Adds a connection. It receives what it subscribes to at once, but counts for its user's status only from
    /// <see cref="MarkLive"/>: a device still in its catch-up has not come online, and one that fails there never did.
    /// </summary>
    public void Register(ChatConnection connection)
    {
        lock (_lock)
        {
            if (!_users.TryGetValue(connection.UserId, out var entry))
            {
                entry = new UserEntry();
                _users.Add(connection.UserId, entry);
            }
            // A new device has not chosen a status: it is online but older than any status another device set,
            // so it does not override "away" chosen elsewhere.
            connection.Presence = PresenceStatus.Online;
            connection.PresenceVersion = 0;
            connection.IsLive = false;
            connection.HeardOwnStatus = false;
            entry.Connections.Add(connection);
        }
    }

    /// <summary>
    /// The connection finished its catch-up and now counts for its user's status. Returns the user's status when
    /// that changed (the first live device brings the user online), else null: a device that went live after
    /// another one set "away" leaves the user away.
    /// </summary>
    public PresenceStatus? MarkLive(ChatConnection connection)
    {
        lock (_lock)
        {
            if (!_users.TryGetValue(connection.UserId, out var entry) || !entry.Connections.Contains(connection))
            {
                return null;
            }
            connection.IsLive = true;
            return Reannounce(entry);
        }
    }

    public void Subscribe(ChatConnection connection, IEnumerable<long> conversationIds)
    {
        lock (_lock)
        {
            foreach (var conversationId in conversationIds)
            {
                AddSubscriber(conversationId, connection);
            }
        }
    }

    /// <summary>
    /// How many membership changes the user's connections have been through. A starting connection reads it
    /// before it reads its conversations from the database, and subscribes with <see cref="TrySubscribe"/>.
    /// </summary>
    public long MembershipVersion(long userId)
    {
        lock (_lock)
        {
            return _users.TryGetValue(userId, out var entry) ? entry.MembershipVersion : 0;
        }
    }

    /// <summary>
    /// Subscribes a registered connection to the conversations it read from the database, unless the user's
    /// membership changed since it read <paramref name="membershipVersion"/>: then nothing is done and false
    /// returned, and the connection reads its conversations again. So a change committed while a connection
    /// starts is never undone by a stale list.
    /// </summary>
    public bool TrySubscribe(ChatConnection connection, IEnumerable<long> conversationIds, long membershipVersion)
    {
        lock (_lock)
        {
            if (_users.TryGetValue(connection.UserId, out var entry) && entry.MembershipVersion != membershipVersion)
            {
                return false;
            }
            foreach (var conversationId in conversationIds)
            {
                AddSubscriber(conversationId, connection);
            }
            return true;
        }
    }

    /// <summary>The user became a member (after the change committed): every connection of theirs, one in its catch-up included, receives the conversation from now on.</summary>
    public void Join(long userId, long conversationId)
    {
        lock (_lock)
        {
            if (_users.TryGetValue(userId, out var entry))
            {
                entry.MembershipVersion++;
                foreach (var connection in entry.Connections)
                {
                    AddSubscriber(conversationId, connection);
                }
            }
        }
    }

    /// <summary>The user stopped being a member (after the change committed): their connections stop receiving the conversation. Returns those that had received it.</summary>
    public IReadOnlyList<ChatConnection> Leave(long userId, long conversationId)
    {
        lock (_lock)
        {
            if (!_users.TryGetValue(userId, out var entry))
            {
                return [];
            }
            entry.MembershipVersion++;
            var left = new List<ChatConnection>();
            foreach (var connection in entry.Connections)
            {
                if (connection.Subscriptions.Remove(conversationId))
                {
                    RemoveSubscriber(conversationId, connection);
                    left.Add(connection);
                }
            }
            return left;
        }
    }

    public void Unsubscribe(ChatConnection connection, long conversationId)
    {
        lock (_lock)
        {
            if (connection.Subscriptions.Remove(conversationId))
            {
                RemoveSubscriber(conversationId, connection);
            }
        }
    }

    /// <summary>The user's connections that are typing in the conversation now.</summary>
    /// <remarks>Asked for every stored message: nothing is allocated when none is typing, as is usual.</remarks>
    public IReadOnlyList<ChatConnection> TypingIn(long userId, long conversationId)
    {
        lock (_lock)
        {
            List<ChatConnection>? typing = null;
            if (_users.TryGetValue(userId, out var entry))
            {
                foreach (var connection in entry.Connections)
                {
                    if (connection.Typing.IsTypingIn(conversationId))
                    {
                        (typing ??= []).Add(connection);
                    }
                }
            }
            return typing ?? (IReadOnlyList<ChatConnection>)[];
        }
    }

    /// <summary>Whether another connection of the same user is typing in the conversation.</summary>
    public bool IsTypingElsewhere(ChatConnection connection, long conversationId)
    {
        lock (_lock)
        {
            return _users.TryGetValue(connection.UserId, out var entry)
                && entry.Connections.Any(other => !ReferenceEquals(other, connection) && other.Typing.IsTypingIn(conversationId));
        }
    }

    public bool IsSubscribed(ChatConnection connection, long conversationId)
    {
        lock (_lock)
        {
            return connection.Subscriptions.Contains(conversationId);
        }
    }

    /// <summary>
    /// Removes a connection and all its subscriptions. Tells whether it was the user's last connection, the
    /// conversations it received, and the user's new status when that changed: offline when no live device is
    /// left, else the status of the remaining ones.
    /// </summary>
    public Departure Unregister(ChatConnection connection)
    {
        lock (_lock)
        {
            var conversations = connection.Subscriptions.ToArray();
            foreach (var conversationId in conversations)
            {
                RemoveSubscriber(conversationId, connection);
            }
            connection.Subscriptions.Clear();

            if (!_users.TryGetValue(connection.UserId, out var entry) || !entry.Connections.Remove(connection))
            {
                return new Departure(WentOffline: false, conversations, ChangedStatus: null);
            }
            if (entry.Connections.Count == 0)
            {
                _users.Remove(connection.UserId);
            }
            // Gone from the user's status when it was their last live device, though another may still be in its
            // catch-up: that one is not live, so the user is offline now, and was last seen now.
            var wentOffline = entry.Connections.Count == 0 || (connection.IsLive && !entry.Connections.Exists(c => c.IsLive));
            // Offline when no live device is left; nothing when the user already appeared so (they chose
            // "offline", or no device of theirs ever went live).
            return new Departure(wentOffline, conversations, Reannounce(entry));
        }
    }

    /// <summary>Records a status the connection set. Returns the user's status when that changed, else null.</summary>
    public PresenceStatus? SetPresence(ChatConnection connection, PresenceStatus status)
    {
        lock (_lock)
        {
            if (!_users.TryGetValue(connection.UserId, out var entry) || !entry.Connections.Contains(connection))
            {
                return null;
            }
            connection.Presence = status;
            connection.PresenceVersion = ++_presenceClock;
            return Reannounce(entry);
        }
    }

    /// <summary>The user's status: the one most recently set among their live connections; offline when none is live.</summary>
    public PresenceStatus PresenceOf(long userId)
    {
        lock (_lock)
        {
            return _users.TryGetValue(userId, out var entry) ? Aggregate(entry) : PresenceStatus.Offline;
        }
    }

    /// <summary>The other users with a connection subscribed to any of the given conversations (one in its catch-up included).</summary>
    public HashSet<long> UsersIn(IEnumerable<long> conversationIds, long exceptUserId)
    {
        var users = new HashSet<long>();
        foreach (var conversationId in conversationIds)
        {
            foreach (var connection in _subscribers.GetValueOrDefault(conversationId, []))
            {
                if (connection.UserId != exceptUserId)
                {
                    users.Add(connection.UserId);
                }
            }
        }
        return users;
    }

    /// <summary>The conversations any of the user's connections receives (one in its catch-up included).</summary>
    public HashSet<long> ConversationsOf(long userId)
    {
        lock (_lock)
        {
            var conversations = new HashSet<long>();
            if (_users.TryGetValue(userId, out var entry))
            {
                foreach (var connection in entry.Connections)
                {
                    conversations.UnionWith(connection.Subscriptions);
                }
            }
            return conversations;
        }
    }

    public IReadOnlyList<ChatConnection> Connections()
    {
        lock (_lock)
        {
            return [.. _users.Values.SelectMany(u => u.Connections)];
        }
    }

    public int ConnectionCount
    {
        get
        {
            lock (_lock)
            {
                return _users.Values.Sum(u => u.Connections.Count);
            }
        }
    }

    public int OnlineUserCount
    {
        get
        {
            lock (_lock)
            {
                return _users.Count;
            }
        }
    }

    /// <summary>Conversations with at least one subscriber; an entry is removed with its last subscriber.</summary>
    public int ConversationCount => _subscribers.Count;

    public void PublishToConversation(long conversationId, OutboundFrame frame, ChatConnection? except = null)
    {
        if (!_subscribers.TryGetValue(conversationId, out var connections))
        {
            return;
        }
        var delivered = 0;
        foreach (var connection in connections)
        {
            if (!ReferenceEquals(connection, except) && connection.Enqueue(frame))
            {
                delivered++;
            }
        }
        _metrics?.Deliveries.Add(delivered);
    }

    public void PublishToConversation(long conversationId, OutboundFrame frame, ChatConnection from, Func<OutboundFrame> toOwnDevices)
    {
        if (!_subscribers.TryGetValue(conversationId, out var connections))
        {
            return;
        }
        // The same bytes for every other user; the user's own copy is written once, when one of theirs is there.
        OutboundFrame? own = null;
        var delivered = 0;
        foreach (var connection in connections)
        {
            if (!ReferenceEquals(connection, from) && connection.Enqueue(connection.UserId == from.UserId ? own ??= toOwnDevices() : frame))
            {
                delivered++;
            }
        }
        _metrics?.Deliveries.Add(delivered);
    }

    public void PublishToUsersIn(IEnumerable<long> conversationIds, OutboundFrame frame, long exceptUserId)
    {
        var users = UsersIn(conversationIds, exceptUserId);
        if (users.Count == 0)
        {
            return;
        }
        ChatConnection[] recipients;
        lock (_lock)
        {
            recipients = [.. users.SelectMany(id => _users.TryGetValue(id, out var entry) ? entry.Connections : [])];
        }
        _metrics?.Deliveries.Add(EnqueueAll(recipients, frame));
    }

    /// <inheritdoc/>
    /// <remarks>
    /// A device hears nothing of its own changes at first: it knows what it set. But a frame about another device's
    /// change can cross the device's own <c>presence</c> frame on the wire, and reach it after it sent its own though
    /// that change came first; the last frame it got would then be an older status than the user's. So a device that
    /// has been sent one hears of its own changes too, after whatever it was sent before. Which frames a client read
    /// before it sent its own cannot be known here, so this lasts as long as the connection. Called under the
    /// announcer's lock, which orders the changes.
    /// </remarks>
    public void PublishToOwnDevices(ChatConnection source, OutboundFrame frame)
    {
        List<ChatConnection>? recipients = null;
        lock (_lock)
        {
            if (!_users.TryGetValue(source.UserId, out var entry))
            {
                return;
            }
            foreach (var connection in entry.Connections)
            {
                if (connection.IsLive && (connection.HeardOwnStatus || !ReferenceEquals(connection, source)))
                {
                    connection.HeardOwnStatus = true;
                    (recipients ??= []).Add(connection);
                }
            }
        }
        if (recipients is null)
        {
            return;
        }
        _metrics?.Deliveries.Add(EnqueueAll(recipients, frame));
    }

    /// <summary>Queues the frame to each connection; how many queued it now (not held for after a catch-up, nor dropped).</summary>
    private static int EnqueueAll(IReadOnlyList<ChatConnection> recipients, OutboundFrame frame)
    {
        var delivered = 0;
        for (var i = 0; i < recipients.Count; i++)
        {
            delivered += recipients[i].Enqueue(frame) ? 1 : 0;
        }
        return delivered;
    }

    private void AddSubscriber(long conversationId, ChatConnection connection)
    {
        if (connection.Subscriptions.Add(conversationId))
        {
            var current = _subscribers.GetValueOrDefault(conversationId, []);
            _subscribers[conversationId] = [.. current, connection];
        }
    }

    private void RemoveSubscriber(long conversationId, ChatConnection connection)
    {
        if (!_subscribers.TryGetValue(conversationId, out var current))
        {
            return;
        }
        var remaining = Array.FindAll(current, c => !ReferenceEquals(c, connection));
        if (remaining.Length == 0)
        {
            _subscribers.TryRemove(conversationId, out _);
        }
        else
        {
            _subscribers[conversationId] = remaining;
        }
    }

    private static PresenceStatus? Reannounce(UserEntry entry)
    {
        var status = Aggregate(entry);
        if (status == entry.Announced)
        {
            return null;
        }
        entry.Announced = status;
        return status;
    }

    private static PresenceStatus Aggregate(UserEntry entry) =>
        entry.Connections.Where(c => c.IsLive).MaxBy(c => c.PresenceVersion)?.Presence ?? PresenceStatus.Offline;

    private sealed class UserEntry
    {
        public List<ChatConnection> Connections { get; } = [];

        /// <summary>The status last announced to others, so that only changes are broadcast; offline until a device is live.</summary>
        public PresenceStatus Announced { get; set; } = PresenceStatus.Offline;

        /// <summary>Bumped by every <see cref="Join"/> and <see cref="Leave"/>; see <see cref="TrySubscribe"/>.</summary>
        public long MembershipVersion { get; set; }
    }
}

/// <param name="WentOffline">
/// The user has no live connection left, and this one was live or was their last: they were last seen now. (Closing a
/// device that never went live while another is still in its catch-up, or live, is not that.)
/// </param>
/// <param name="Conversations">The conversations the connection was subscribed to.</param>
/// <param name="ChangedStatus">The user's status to announce, when it changed: the remaining devices' status, or offline.</param>
public sealed record Departure(bool WentOffline, IReadOnlyCollection<long> Conversations, PresenceStatus? ChangedStatus);
