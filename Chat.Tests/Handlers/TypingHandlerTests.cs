using System.Text.Json;
using Chat.Core.Connections;
using Chat.Core.Handlers;
using Chat.Core.Options;
using Chat.Core.Protocol;
using Chat.Tests.Connections;

namespace Chat.Tests.Handlers;

/// <summary>
/// The interleavings of a <c>typing</c> frame with its sender's removal from the conversation, which the socket tests
/// cannot time: the removal is made to land inside the handler, where the publisher is called.
/// </summary>
public sealed class TypingHandlerTests
{
    private const long Conversation = 7;

    private ConnectionRegistry _registry = null!;
    private ChatConnection _typist = null!;

    [SetUp]
    public void OneMemberTyping()
    {
        _registry = new ConnectionRegistry();
        _typist = new ChatConnection(_registry.NextConnectionId(), new ConnectedUser(1, "ext-1", "User 1", null), new RecordingWebSocket(), 64, 1 << 20);
        _registry.Register(_typist);
        _registry.Subscribe(_typist, [Conversation]);
    }

    [TearDown]
    public void Close() => _typist.RequestClose(CloseReason.Normal);

    private TypingHandler Handler(IChatPublisher publisher) =>
        new(_registry, publisher, TimeProvider.System, Microsoft.Extensions.Options.Options.Create(new ChatLimitsOptions()));

    [Test]
    public async Task A_start_that_races_its_senders_removal_is_taken_back_at_once()
    {
        // The removal lands after the handler's membership check, and its own stop found nothing to stop.
        var publisher = new RecordingPublisher(onFirstPublish: () => _registry.Leave(_typist.UserId, Conversation));

        await Handler(publisher).HandleAsync(_typist, new TypingFrame(Conversation, IsTyping: true), CancellationToken.None);

        Assert.That(publisher.Typing, Is.EqualTo(new[] { true, false }), "the others end with the user not typing");
        Assert.That(_typist.Typing.TakeExpired(now: null), Is.Empty, "nothing is left for the sweeper to announce later");
    }

    [Test]
    public async Task A_start_by_a_member_who_stays_is_announced_once()
    {
        var publisher = new RecordingPublisher(onFirstPublish: () => { });

        await Handler(publisher).HandleAsync(_typist, new TypingFrame(Conversation, IsTyping: true), CancellationToken.None);

        Assert.That(publisher.Typing, Is.EqualTo(new[] { true }));
        Assert.That(_typist.Typing.TakeExpired(now: null), Is.EqualTo(new[] { Conversation }), "it lapses on its own later");
    }

    private sealed class RecordingPublisher(Action onFirstPublish) : IChatPublisher
    {
        public List<bool> Typing { get; } = [];

        public void PublishToConversation(long conversationId, OutboundFrame frame, ChatConnection? except = null)
        {
            using var json = JsonDocument.Parse(frame.Payload);
            Typing.Add(json.RootElement.GetProperty("isTyping").GetBoolean());
            if (Typing.Count == 1)
            {
                onFirstPublish();
            }
        }

        public void PublishToUsers(IEnumerable<long> userIds, OutboundFrame frame) => throw new AssertionException("typing goes to a conversation only");
    }
}
