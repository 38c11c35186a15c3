using Chat.Core.Connections;
using Chat.Core.Protocol;
using Chat.Tests.Connections;
using CsCheck;

namespace Chat.Tests.Hardening;

/// <summary>
/// Random sequences of connect, going live, subscribe, unsubscribe, presence and disconnect applied to the registry and to a
/// plain model of it: after every step they agree on who is connected, who receives what, each user's presence
/// and what each call returned; a conversation entry exists only while it has a subscriber.
/// </summary>
public sealed class ConnectionRegistryModelTests
{
    private const int Slots = 6;          // connection slots, two per user
    private const int Conversations = 4;

    [Test]
    public void The_registry_behaves_like_a_simple_model_and_leaks_nothing()
    {
        long steps = 0;
        // The operations go in an array: there are more of them than the overloads with one parameter each take.
        Gen.Const(() => (new Actual(), new Model())).SampleModelBased(
            [
                Gen.Int[0, Slots - 1].Operation<Actual, Model>(
                    i => $"Connect({i})",
                    (a, i) => { Interlocked.Increment(ref steps); a.Connect(i); },
                    (m, i) => m.Connect(i)),
                Gen.Int[0, Slots - 1].Operation<Actual, Model>(
                    i => $"MarkLive({i})",
                    (a, i) => { Interlocked.Increment(ref steps); a.MarkLive(i); },
                    (m, i) => m.MarkLive(i)),
                Gen.Select(Gen.Int[0, Slots - 1], Gen.Int[1, Conversations].Array[1, 3]).Operation<Actual, Model>(
                    t => $"Subscribe({t.Item1}, [{string.Join(',', t.Item2)}])",
                    (a, t) => { Interlocked.Increment(ref steps); a.Subscribe(t.Item1, t.Item2); },
                    (m, t) => m.Subscribe(t.Item1, t.Item2)),
                Gen.Select(Gen.Int[0, Slots - 1], Gen.Int[1, Conversations]).Operation<Actual, Model>(
                    t => $"Unsubscribe({t.Item1}, {t.Item2})",
                    (a, t) => { Interlocked.Increment(ref steps); a.Unsubscribe(t.Item1, t.Item2); },
                    (m, t) => m.Unsubscribe(t.Item1, t.Item2)),
                Gen.Select(Gen.Int[0, Slots - 1], Gen.Enum<PresenceStatus>()).Operation<Actual, Model>(
                    t => $"SetPresence({t.Item1}, {t.Item2})",
                    (a, t) => { Interlocked.Increment(ref steps); a.SetPresence(t.Item1, t.Item2); },
                    (m, t) => m.SetPresence(t.Item1, t.Item2)),
                Gen.Int[0, Slots - 1].Operation<Actual, Model>(
                    i => $"Disconnect({i})",
                    (a, i) => { Interlocked.Increment(ref steps); a.Disconnect(i); },
                    (m, i) => m.Disconnect(i)),
                Gen.Operation<Actual, Model>(
                    "DisconnectAll",
                    a => { Interlocked.Increment(ref steps); a.DisconnectAll(); },
                    m => m.DisconnectAll()),
            ],
            equal: (a, m) => a.Snapshot() == m.Snapshot(),
            printActual: a => a.Snapshot(),
            printModel: m => m.Snapshot(),
            iter: 2_000);
        ReliabilityReport.Ledger.BadInput("registry: random connect/live/subscribe/unsubscribe/presence/disconnect steps (model-based test)", steps);
    }

    private static long UserOf(int slot) => slot / 2 + 1;

    /// <summary>The real registry, with one connection object per slot (a fresh one after each disconnect, as a new socket would be).</summary>
    internal sealed class Actual
    {
        private readonly ConnectionRegistry _registry = new();
        private readonly ChatConnection?[] _slots = new ChatConnection?[Slots];
        private string _last = "";

        public void Connect(int slot)
        {
            if (_slots[slot] is not null)
            {
                return;
            }
            var user = UserOf(slot);
            _slots[slot] = new ChatConnection(_registry.NextConnectionId(), new ConnectedUser(user, $"u{user}", $"U{user}", null), new RecordingWebSocket(), 16, 4096);
            _registry.Register(_slots[slot]!);
            _last = "registered";
        }

        public void MarkLive(int slot)
        {
            if (_slots[slot] is { } connection)
            {
                _last = $"changed={_registry.MarkLive(connection)?.ToString() ?? "-"}";
            }
        }

        public void Subscribe(int slot, int[] conversations)
        {
            if (_slots[slot] is { } connection)
            {
                _registry.Subscribe(connection, conversations.Select(c => (long)c));
            }
        }

        public void Unsubscribe(int slot, int conversation)
        {
            if (_slots[slot] is { } connection)
            {
                _registry.Unsubscribe(connection, conversation);
            }
        }

        public void SetPresence(int slot, PresenceStatus status)
        {
            if (_slots[slot] is { } connection)
            {
                _last = $"changed={_registry.SetPresence(connection, status)?.ToString() ?? "-"}";
            }
        }

        public void Disconnect(int slot)
        {
            if (_slots[slot] is { } connection)
            {
                var departure = _registry.Unregister(connection);
                _last = $"offline={departure.WentOffline} convs=[{string.Join(',', departure.Conversations.Order())}] changed={departure.ChangedStatus?.ToString() ?? "-"}";
                // Unregistering twice is harmless.
                if (_registry.Unregister(connection).WentOffline)
                {
                    _last += " second unregister went offline";
                }
                _slots[slot] = null;
            }
        }

        public void DisconnectAll()
        {
            for (var slot = 0; slot < Slots; slot++)
            {
                Disconnect(slot);
            }
        }

        public string Snapshot()
        {
            var text = new System.Text.StringBuilder($"last {_last}; connections {_registry.ConnectionCount}; conversations {_registry.ConversationCount};");
            for (var slot = 0; slot < Slots; slot++)
            {
                var connection = _slots[slot];
                text.Append($" s{slot}[{string.Join(',', Enumerable.Range(1, Conversations).Where(c => connection is not null && _registry.IsSubscribed(connection, c)))}]");
            }
            for (long user = 1; user <= Slots / 2; user++)
            {
                text.Append($" u{user}:{_registry.PresenceOf(user)}:[{string.Join(',', _registry.ConversationsOf(user).Order())}]");
            }
            for (var conversation = 1; conversation <= Conversations; conversation++)
            {
                text.Append($" c{conversation}:[{string.Join(',', _registry.UsersIn([conversation], exceptUserId: 0).Order())}]");
            }
            return text.ToString();
        }
    }

    /// <summary>What the registry should hold, kept the plainest way.</summary>
    internal sealed class Model
    {
        private readonly HashSet<int>?[] _subscriptions = new HashSet<int>?[Slots];
        private readonly (PresenceStatus Status, long Version)?[] _presence = new (PresenceStatus, long)?[Slots];
        private readonly bool[] _live = new bool[Slots];
        private readonly Dictionary<long, PresenceStatus> _announced = [];
        private long _clock;
        private string _last = "";

        private IEnumerable<int> SlotsOf(long user) => Enumerable.Range(0, Slots).Where(s => UserOf(s) == user && _subscriptions[s] is not null);

        private PresenceStatus Aggregate(long user)
        {
            // Only connections past their catch-up count.
            var live = SlotsOf(user).Where(s => _live[s]).ToList();
            if (live.Count == 0)
            {
                return PresenceStatus.Offline;
            }
            var chosen = live.Where(s => _presence[s] is not null).OrderByDescending(s => _presence[s]!.Value.Version).FirstOrDefault(-1);
            return chosen < 0 ? PresenceStatus.Online : _presence[chosen]!.Value.Status;
        }

        private PresenceStatus? Reannounce(long user)
        {
            var status = Aggregate(user);
            if (_announced.GetValueOrDefault(user, PresenceStatus.Offline) == status)
            {
                return null;
            }
            _announced[user] = status;
            return status;
        }

        public void Connect(int slot)
        {
            if (_subscriptions[slot] is not null)
            {
                return;
            }
            _subscriptions[slot] = [];
            _presence[slot] = null;
            _live[slot] = false;
            _last = "registered";
        }

        public void MarkLive(int slot)
        {
            if (_subscriptions[slot] is not null)
            {
                _live[slot] = true;
                _last = $"changed={Reannounce(UserOf(slot))?.ToString() ?? "-"}";
            }
        }

        public void Subscribe(int slot, int[] conversations) => _subscriptions[slot]?.UnionWith(conversations);

        public void Unsubscribe(int slot, int conversation) => _subscriptions[slot]?.Remove(conversation);

        public void SetPresence(int slot, PresenceStatus status)
        {
            if (_subscriptions[slot] is not null)
            {
                _presence[slot] = (status, ++_clock);
                _last = $"changed={Reannounce(UserOf(slot))?.ToString() ?? "-"}";
            }
        }

        public void Disconnect(int slot)
        {
            if (_subscriptions[slot] is not { } subscriptions)
            {
                return;
            }
            var user = UserOf(slot);
            var wasLive = _live[slot];
            _subscriptions[slot] = null;
            _presence[slot] = null;
            _live[slot] = false;
            // The user's last connection, or their last live one (another may still be in its catch-up).
            var offline = !SlotsOf(user).Any() || (wasLive && !SlotsOf(user).Any(s => _live[s]));
            var changed = Reannounce(user);
            _last = $"offline={offline} convs=[{string.Join(',', subscriptions.Order())}] changed={changed?.ToString() ?? "-"}";
        }

        public void DisconnectAll()
        {
            for (var slot = 0; slot < Slots; slot++)
            {
                Disconnect(slot);
            }
        }

        public string Snapshot()
        {
            var live = Enumerable.Range(0, Slots).Where(s => _subscriptions[s] is not null).ToList();
            var conversations = live.SelectMany(s => _subscriptions[s]!).Distinct().Count();
            var text = new System.Text.StringBuilder($"last {_last}; connections {live.Count}; conversations {conversations};");
            for (var slot = 0; slot < Slots; slot++)
            {
                text.Append($" s{slot}[{string.Join(',', (_subscriptions[slot] ?? []).Order())}]");
            }
            for (long user = 1; user <= Slots / 2; user++)
            {
                text.Append($" u{user}:{Aggregate(user)}:[{string.Join(',', SlotsOf(user).SelectMany(s => _subscriptions[s]!).Distinct().Order())}]");
            }
            for (var conversation = 1; conversation <= Conversations; conversation++)
            {
                text.Append($" c{conversation}:[{string.Join(',', live.Where(s => _subscriptions[s]!.Contains(conversation)).Select(UserOf).Distinct().Order())}]");
            }
            return text.ToString();
        }
    }
}
