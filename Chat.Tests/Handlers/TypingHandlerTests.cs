using System.Text.Json;
using Chat.Core.Connections;
using Chat.Core.Conversations;
using Chat.Core.Handlers;
using Chat.Core.Options;
using Chat.Core.Protocol;
using Chat.Tests.Connections;

namespace Chat.Tests.Handlers;

/// <summary>
/// The interleavings of a <c>typing</c> frame with its sender's removal from the conversation and with the sweeper
/// that lapses it, which the socket tests cannot time: the other party is made to land inside the publisher call.
/// </summary>
public sealed class TypingHandlerTests
{
    private const long Conversation = 7;

    private ConnectionRegistry _registry = null!;
    private ChatConnection _typist = null!;
    private readonly List<ChatConnection> _connections = [];

    [SetUp]
    public void OneMemberTyping()
    {
        _registry = new ConnectionRegistry();
        _typist = Device();
    }

    [TearDown]
    public void Close()
    {
        foreach (var connection in _connections)
        {
            connection.RequestClose(CloseReason.Normal);
        }
        _connections.Clear();
    }

    /// <summary>A connection of the typist's user, in the conversation.</summary>
    private ChatConnection Device()
    {
        var connection = new ChatConnection(_registry.NextConnectionId(), new ConnectedUser(1, "ext-1", "User 1", null), new RecordingWebSocket(), 64, 1 << 20);
        _registry.Register(connection);
        _registry.Subscribe(connection, [Conversation]);
        _connections.Add(connection);
        return connection;
    }

    private TypingHandler Handler(IChatPublisher publisher, TimeSpan? typingTimeout = null) =>
        new(_registry, publisher, new MembershipFences(), TimeProvider.System, Microsoft.Extensions.Options.Options.Create(
            new ChatLimitsOptions { TypingTimeout = typingTimeout ?? new ChatLimitsOptions().TypingTimeout }));

    private List<long> TypingLeftToLapse()
    {
        var left = new List<long>();
        _typist.Typing.StopExpired(now: null, left.Add);
        return left;
    }

    [Test]
    public async Task A_start_that_races_its_senders_removal_is_taken_back_at_once()
    {
        // The removal lands after the handler's membership check, and its own stop found nothing to stop.
        var publisher = new RecordingPublisher(onFirstPublish: () => _registry.Leave(_typist.UserId, Conversation));

        await Handler(publisher).HandleAsync(_typist, new TypingFrame(Conversation, IsTyping: true), CancellationToken.None);

        Assert.That(publisher.Typing, Is.EqualTo(new[] { true, false }), "the others end with the user not typing");
        Assert.That(TypingLeftToLapse(), Is.Empty, "nothing is left for the sweeper to announce later");
    }

    /// <summary>
    /// A publisher that, on the first announcement, has <paramref name="device"/> start typing on another thread and
    /// gives it the time to overtake that announcement, which it must not do; the start is awaited through the
    /// returned function.
    /// </summary>
    private (RecordingPublisher Publisher, Func<Task> Started) StartingInsideFirstPublish(ChatConnection device)
    {
        Task? start = null;
        RecordingPublisher publisher = null!;
        publisher = new RecordingPublisher(onFirstPublish: () => { }, beforeEachPublish: () =>
        {
            if (start is null)
            {
                start = Task.Run(() => Handler(publisher).HandleAsync(device, new TypingFrame(Conversation, IsTyping: true), CancellationToken.None).AsTask());
                start.Wait(TimeSpan.FromMilliseconds(300));
            }
        });
        return (publisher, () => start!);
    }

    [Test]
    public async Task A_start_by_a_member_who_stays_is_announced_once()
    {
        var publisher = new RecordingPublisher(onFirstPublish: () => { });

        await Handler(publisher).HandleAsync(_typist, new TypingFrame(Conversation, IsTyping: true), CancellationToken.None);

        Assert.That(publisher.Typing, Is.EqualTo(new[] { true }));
        Assert.That(TypingLeftToLapse(), Is.EqualTo(new[] { Conversation }), "it lapses on its own later");
    }

    [Test]
    public async Task A_renewal_that_races_the_sweeper_lapsing_it_is_announced_after_the_lapse()
    {
        // Typing that has already lapsed when the sweeper looks (a zero timeout), renewed while the sweeper is
        // announcing the lapse: the renewal must reach the others last, or they see the user stopped mid-sentence.
        var handler = Handler(new RecordingPublisher(onFirstPublish: () => { }), typingTimeout: TimeSpan.Zero);
        await handler.HandleAsync(_typist, new TypingFrame(Conversation, IsTyping: true), CancellationToken.None);

        var (publisher, renewal) = StartingInsideFirstPublish(_typist);
        new TypingSweeper(_registry, publisher, new MembershipFences(), TimeProvider.System).Sweep();
        await renewal();

        Assert.That(publisher.Typing, Is.EqualTo(new[] { false, true }), "the others end with the user typing");
        Assert.That(TypingLeftToLapse(), Is.EqualTo(new[] { Conversation }), "the renewal is remembered for the sweeper");
    }

    [Test]
    public async Task A_device_that_stops_while_another_types_is_not_announced_whatever_the_publisher()
    {
        // The per-user rule is read from the registry, not from the publisher: a fan-out to other gateways that
        // replaced the registry as publisher would otherwise tell the others the user stopped mid-sentence.
        var publisher = new RecordingPublisher(onFirstPublish: () => { });
        var laptop = Device();
        await Handler(publisher).HandleAsync(_typist, new TypingFrame(Conversation, IsTyping: true), CancellationToken.None);
        await Handler(publisher).HandleAsync(laptop, new TypingFrame(Conversation, IsTyping: true), CancellationToken.None);

        await Handler(publisher).HandleAsync(_typist, new TypingFrame(Conversation, IsTyping: false), CancellationToken.None);

        Assert.That(publisher.Typing, Is.EqualTo(new[] { true, true }), "the laptop still types");
    }

    [Test]
    public async Task A_start_on_another_device_that_races_a_stop_is_announced_after_it()
    {
        // The phone stops and, finding no other device typing, announces it; the laptop starts meanwhile. Its start
        // must reach the others last, or they see the user stopped while the laptop types, until its next renewal.
        var laptop = Device();
        await Handler(new RecordingPublisher(onFirstPublish: () => { })).HandleAsync(_typist, new TypingFrame(Conversation, IsTyping: true), CancellationToken.None);

        var (publisher, start) = StartingInsideFirstPublish(laptop);
        await Handler(publisher).HandleAsync(_typist, new TypingFrame(Conversation, IsTyping: false), CancellationToken.None);
        await start();

        Assert.That(publisher.Typing, Is.EqualTo(new[] { false, true }), "the others end with the user typing");
    }

    [Test]
    public async Task A_start_handled_after_its_connection_left_is_not_announced()
    {
        // The connection left while the frame was in hand, past the handler's membership check: the sweeper no
        // longer sees the connection, so typing announced now would never lapse.
        var publisher = new RecordingPublisher(onFirstPublish: () => { });
        _typist.Typing.Close(_ => { });

        await Handler(publisher).HandleAsync(_typist, new TypingFrame(Conversation, IsTyping: true), CancellationToken.None);

        Assert.That(publisher.Typing, Is.Empty);
        Assert.That(TypingLeftToLapse(), Is.Empty);
    }

    [Test]
    public async Task The_sweeper_disposed_without_being_stopped_ends_without_a_fault()
    {
        // What the host does to it when its start fails (a listen address in use): disposed, never stopped. A
        // cancelled ExecuteTask is then logged as a background service that crashed and stopped the host.
        var clock = new TimerWatchingTimeProvider();
        var sweeper = new TypingSweeper(_registry, new RecordingPublisher(onFirstPublish: () => { }), new MembershipFences(), clock);
        await sweeper.StartAsync(CancellationToken.None);
        var running = sweeper.ExecuteTask!;
        // Inside ExecuteAsync, waiting for its first tick (disposed before it runs, the task is cancelled unrun).
        await clock.TimerCreated.WaitAsync(TimeSpan.FromSeconds(5));

        sweeper.Dispose();

        Assert.That(await Task.WhenAny(running, Task.Delay(TimeSpan.FromSeconds(5))), Is.SameAs(running));
        Assert.That(running.Status, Is.EqualTo(TaskStatus.RanToCompletion));
    }

    private sealed class TimerWatchingTimeProvider : TimeProvider
    {
        private readonly TaskCompletionSource _timerCreated = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task TimerCreated => _timerCreated.Task;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = base.CreateTimer(callback, state, dueTime, period);
            _timerCreated.TrySetResult();
            return timer;
        }
    }

    private sealed class RecordingPublisher(Action onFirstPublish, Action? beforeEachPublish = null) : IChatPublisher
    {
        public List<bool> Typing { get; } = [];

        public void PublishToConversation(long conversationId, OutboundFrame frame, ChatConnection? except = null)
        {
            beforeEachPublish?.Invoke();
            using var json = JsonDocument.Parse(frame.Payload);
            lock (Typing)
            {
                Typing.Add(json.RootElement.GetProperty("isTyping").GetBoolean());
            }
            if (Typing.Count == 1)
            {
                onFirstPublish();
            }
        }

        public void PublishToUsersIn(IEnumerable<long> conversationIds, OutboundFrame frame, long exceptUserId) => throw new AssertionException("typing goes to a conversation only");

        public void PublishToOwnDevices(ChatConnection source, OutboundFrame frame) => throw new AssertionException("typing goes to a conversation only");

        public void PublishToConversation(long conversationId, OutboundFrame frame, ChatConnection from, Func<OutboundFrame> toOwnDevices) =>
            throw new AssertionException("typing is the same for everyone");
    }
}
