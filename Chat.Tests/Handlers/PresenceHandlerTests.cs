using System.Text.Json;
using Chat.Core.Connections;
using Chat.Core.Handlers;
using Chat.Core.Protocol;
using Chat.Tests.Connections;

namespace Chat.Tests.Handlers;

/// <summary>
/// Two of a user's devices changing the status at once, which the socket tests cannot time: the second change is
/// started on another thread while the first one's announcement is being published.
/// </summary>
public sealed class PresenceHandlerTests
{
    private const long Conversation = 7;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private ConnectionRegistry _registry = null!;
    private ChatConnection _phone = null!;
    private ChatConnection _laptop = null!;
    private ChatConnection _observer = null!;

    [SetUp]
    public void OneUserOnTwoDevicesAndOneObserver()
    {
        _registry = new ConnectionRegistry();
        _phone = Live(1);
        _laptop = Live(1);
        _observer = Live(2);
    }

    [TearDown]
    public void Close()
    {
        foreach (var connection in new[] { _phone, _laptop, _observer })
        {
            connection.RequestClose(CloseReason.Normal);
        }
    }

    private ChatConnection Live(long userId)
    {
        var connection = new ChatConnection(_registry.NextConnectionId(), new ConnectedUser(userId, $"ext-{userId}", $"User {userId}", null), new RecordingWebSocket(), 64, 1 << 20);
        _registry.Register(connection);
        _registry.Subscribe(connection, [Conversation]);
        _registry.MarkLive(connection);
        return connection;
    }

    [Test]
    public async Task A_status_change_that_races_another_devices_announcement_is_announced_after_it()
    {
        PresenceHandler handler = null!;
        Thread? other = null;
        var otherHandled = false;
        var publisher = new RecordingPublisher(onFirstPublish: () =>
        {
            // The laptop's change starts while the phone's is being published: it either gets in first, or is
            // made to wait (parked on a lock) until this announcement has been queued.
            other = new Thread(() => otherHandled = handler.HandleAsync(_laptop, new PresenceFrame(PresenceStatus.Busy), CancellationToken.None).IsCompletedSuccessfully);
            other.Start();
            Assert.That(SpinWait.SpinUntil(() => !other.IsAlive || other.ThreadState.HasFlag(ThreadState.WaitSleepJoin), Patience), Is.True);
        });
        handler = new PresenceHandler(new PresenceAnnouncer(_registry, publisher, TimeProvider.System));

        await handler.HandleAsync(_phone, new PresenceFrame(PresenceStatus.Away), CancellationToken.None);
        Assert.That(other!.Join(Patience) && otherHandled, Is.True);

        Assert.That(publisher.Statuses, Is.EqualTo(new[] { "away", "busy" }), "announced in the order the statuses were set");
        Assert.That(_registry.PresenceOf(1), Is.EqualTo(PresenceStatus.Busy));
    }

    [Test]
    public async Task A_status_change_reaches_the_observers_and_the_users_own_devices_through_the_publisher()
    {
        var publisher = new RecordingPublisher(onFirstPublish: () => { });
        var handler = new PresenceHandler(new PresenceAnnouncer(_registry, publisher, TimeProvider.System));

        await handler.HandleAsync(_phone, new PresenceFrame(PresenceStatus.Away), CancellationToken.None);

        Assert.That(publisher.Statuses, Is.EqualTo(new[] { "away" }));
        Assert.That(publisher.OwnDevices, Is.EqualTo(new[] { (_phone, "away") }), "told which device made the change, so that it can leave that one out");
    }

    private sealed class RecordingPublisher(Action onFirstPublish) : IChatPublisher
    {
        private readonly Lock _lock = new();
        private bool _called;

        public List<string?> Statuses { get; } = [];

        public void PublishToConversation(long conversationId, OutboundFrame frame, ChatConnection? except = null) =>
            throw new AssertionException("presence goes to users");

        public void PublishToConversation(long conversationId, OutboundFrame frame, ChatConnection from, Func<OutboundFrame> toOwnDevices) =>
            throw new AssertionException("presence goes to users");

        /// <summary>The announcements to the user's own devices: the connection that made each change, and the status.</summary>
        public List<(ChatConnection Source, string? Status)> OwnDevices { get; } = [];

        public void PublishToOwnDevices(ChatConnection source, OutboundFrame frame)
        {
            using var json = JsonDocument.Parse(frame.Payload);
            lock (_lock)
            {
                OwnDevices.Add((source, json.RootElement.GetProperty("presenceStatus").GetString()));
            }
        }

        public void PublishToUsersIn(IEnumerable<long> conversationIds, OutboundFrame frame, long exceptUserId)
        {
            bool first;
            lock (_lock)
            {
                first = !_called;
                _called = true;
            }
            // The interleaving lands between the status change and its frame reaching the recipients.
            if (first)
            {
                onFirstPublish();
            }
            using var json = JsonDocument.Parse(frame.Payload);
            lock (_lock)
            {
                Statuses.Add(json.RootElement.GetProperty("presenceStatus").GetString());
            }
        }
    }
}
