using Chat.Core.Connections;
using Chat.Core.Messages;
using Chat.Data.Messages;
using Chat.Tests.Connections;

namespace Chat.Tests.Messages;

/// <summary>What the writer publishes after a batch, and in which order: <see cref="MessageWriter.Plan"/>.</summary>
public sealed class MessageWriterPlanTests
{
    private static readonly DateTime At = new(2025, 6, 1, 9, 30, 0, DateTimeKind.Utc);
    private static readonly ConnectedUser Alice = new(1, "alice", "Alice", "https://cdn.example.com/alice.png");
    private static readonly ConnectedUser Bob = new(2, "bob", "Bob", null);

    private static MessageWriter.Submission Sent(ConnectedUser sender, long conversationId, string key, string content = "text", ChatConnection? connection = null) =>
        new(new NewMessage(conversationId, sender.UserId, key, content, "text", null, null, content), sender, connection);

    private static BatchItemResult Stored(long id, long conversationId, long seq) =>
        new(new StoreResult(StoreOutcome.Stored, id, conversationId, seq, At), null);

    private static BatchItemResult Duplicate(long id, long conversationId, long seq, MessageBody? twin = null) =>
        new(new StoreResult(StoreOutcome.Duplicate, id, conversationId, seq, At), twin);

    private static BatchItemResult Refused(StoreOutcome outcome, long conversationId) =>
        new(new StoreResult(outcome, 0, conversationId, 0, At), null);

    [Test]
    public void Stored_messages_are_published_with_their_fields_and_the_sending_connection_left_out()
    {
        var socket = new RecordingWebSocket();
        var phone = new ChatConnection(7, Alice, socket, 8, 4096);
        var publishedUpTo = 10L;
        var items = new[] { new MessageWriter.Submission(new NewMessage(3, Alice.UserId, "k", "hello", "image", 4, "https://cdn.example.com/cat.png", "hello"), Alice, phone) };

        var plan = MessageWriter.Plan(items, [Stored(11, 3, 5)], ref publishedUpTo);

        var (message, except) = plan.Single();
        Assert.That(except, Is.SameAs(phone));
        Assert.That((message.MessageId, message.ConversationId, message.Seq, message.CreatedAt), Is.EqualTo((11L, 3L, 5L, At)));
        Assert.That((message.SenderId, message.SenderName, message.SenderAvatarUrl), Is.EqualTo((1L, "Alice", "https://cdn.example.com/alice.png")));
        Assert.That((message.Content, message.MessageType, message.ReplyToMessageId, message.MediaUrl, message.ClientMessageId),
            Is.EqualTo(("hello", "image", (long?)4, "https://cdn.example.com/cat.png", "k")));
        Assert.That(publishedUpTo, Is.EqualTo(11));
    }

    [Test]
    public void Messages_of_several_conversations_are_published_in_seq_order_within_each()
    {
        var publishedUpTo = 100L;
        var items = new[] { Sent(Alice, 1, "a"), Sent(Bob, 2, "b"), Sent(Bob, 1, "c"), Sent(Alice, 2, "d") };

        var plan = MessageWriter.Plan(items, [Stored(101, 1, 8), Stored(102, 2, 3), Stored(103, 1, 9), Stored(104, 2, 4)], ref publishedUpTo);

        Assert.That(plan.Where(p => p.Message.ConversationId == 1).Select(p => p.Message.Seq), Is.EqualTo(new long[] { 8, 9 }));
        Assert.That(plan.Where(p => p.Message.ConversationId == 2).Select(p => p.Message.Seq), Is.EqualTo(new long[] { 3, 4 }));
        Assert.That(publishedUpTo, Is.EqualTo(104));
    }

    [Test]
    public void A_duplicate_of_a_message_already_published_is_not_published_again()
    {
        var publishedUpTo = 50L;

        var plan = MessageWriter.Plan([Sent(Alice, 1, "old")], [Duplicate(42, 1, 7)], ref publishedUpTo);

        Assert.That(plan, Is.Empty);
        Assert.That(publishedUpTo, Is.EqualTo(50));
    }

    [Test]
    public void An_original_never_published_goes_out_with_its_own_fields_before_the_later_messages_of_its_conversation()
    {
        // Its batch committed but the reply was lost; the resend is queued after a newer message of the same conversation.
        var publishedUpTo = 10L;
        var items = new[] { Sent(Bob, 1, "new", "newer"), Sent(Alice, 1, "lost", "the resend's text") };

        var plan = MessageWriter.Plan(items, [Stored(20, 1, 6), Duplicate(15, 1, 5, new MessageBody("as first sent", "text", null, null))], ref publishedUpTo);

        Assert.That(plan.Select(p => (p.Message.Seq, p.Message.Content, p.Message.SenderName)),
            Is.EqualTo(new[] { (5L, "as first sent", "Alice"), (6L, "newer", "Bob") }));
        Assert.That(publishedUpTo, Is.EqualTo(20));
    }

    [Test]
    public void An_original_at_or_below_the_mark_is_not_published_even_with_its_fields()
    {
        var publishedUpTo = 15L;

        var plan = MessageWriter.Plan([Sent(Alice, 1, "k")], [Duplicate(15, 1, 5, new MessageBody("x", "text", null, null))], ref publishedUpTo);

        Assert.That(plan, Is.Empty);
    }

    [Test]
    public void Copies_of_one_message_in_a_batch_are_published_once()
    {
        var publishedUpTo = 10L;
        var twin = new MessageBody("lost", "text", null, null);
        var items = new[] { Sent(Alice, 1, "k"), Sent(Alice, 1, "k"), Sent(Alice, 1, "j"), Sent(Alice, 1, "j") };

        var plan = MessageWriter.Plan(items, [Stored(12, 1, 3), Duplicate(12, 1, 3), Duplicate(11, 1, 2, twin), Duplicate(11, 1, 2, twin)], ref publishedUpTo);

        Assert.That(plan.Select(p => p.Message.MessageId), Is.EqualTo(new long[] { 11, 12 }));
    }

    [Test]
    public void Refused_messages_publish_nothing_and_leave_the_mark()
    {
        var publishedUpTo = 10L;

        var plan = MessageWriter.Plan([Sent(Alice, 1, "a"), Sent(Bob, 1, "b")], [Refused(StoreOutcome.NotMember, 1), Refused(StoreOutcome.BadReply, 1)], ref publishedUpTo);

        Assert.That(plan, Is.Empty);
        Assert.That(publishedUpTo, Is.EqualTo(10));
    }

    [Test]
    public void While_the_mark_is_unknown_no_duplicate_is_taken_for_an_unpublished_one()
    {
        // The writer reads its starting mark before its first batch; were a batch planned without it, the original
        // might have been published by the process before.
        var publishedUpTo = MessageWriter.MarkUnknown;
        var twin = new MessageBody("before the restart", "text", null, null);

        var first = MessageWriter.Plan([Sent(Alice, 1, "old")], [Duplicate(5, 1, 5, twin)], ref publishedUpTo);
        var second = MessageWriter.Plan([Sent(Alice, 1, "new")], [Stored(9, 1, 6)], ref publishedUpTo);

        Assert.That(first, Is.Empty);
        Assert.That(publishedUpTo, Is.EqualTo(9), "a stored message's id is above everything published before it");
        Assert.That(second.Single().Message.MessageId, Is.EqualTo(9));
    }

    [Test]
    public void A_batch_whose_results_do_not_match_its_messages_is_refused()
    {
        var publishedUpTo = 10L;

        Assert.That(() => MessageWriter.Plan([Sent(Alice, 1, "a"), Sent(Alice, 1, "b")], [Stored(11, 1, 1)], ref publishedUpTo),
            Throws.InstanceOf<InvalidOperationException>());
    }
}
