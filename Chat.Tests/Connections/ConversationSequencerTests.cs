using System.Collections.Concurrent;
using Chat.Core.Connections;

namespace Chat.Tests.Connections;

public sealed class ConversationSequencerTests
{
    private const long Conversation = 12;

    private RecordingPublisher _publisher = null!;
    private ConversationSequencer _sequencer = null!;

    [SetUp]
    public void CreateSequencer()
    {
        _publisher = new RecordingPublisher();
        _sequencer = new ConversationSequencer(_publisher);
    }

    private static Publication Committed(long conversationId, long seq, ChatConnection? except = null) =>
        new(seq, new OutboundFrame(new byte[] { (byte)seq }, conversationId, seq), except);

    [Test]
    public void A_single_store_is_published_as_soon_as_it_leaves()
    {
        var ticket = _sequencer.Enter(Conversation);
        Assert.That(_publisher.SeqsIn(Conversation), Is.Empty);

        _sequencer.Leave(Conversation, ticket, Committed(Conversation, 1));

        Assert.That(_publisher.SeqsIn(Conversation), Is.EqualTo(new long[] { 1 }));
    }

    [Test]
    public void The_frame_and_the_sender_to_skip_are_passed_on_unchanged()
    {
        var publication = Committed(Conversation, 5);

        _sequencer.Leave(Conversation, _sequencer.Enter(Conversation), publication);

        Assert.That(_publisher.Published.Single(), Is.EqualTo((Conversation, publication.Frame, (ChatConnection?)null)));
    }

    [Test]
    public void Seq_6_completing_before_seq_5_is_published_after_5()
    {
        var five = _sequencer.Enter(Conversation);
        var six = _sequencer.Enter(Conversation);

        _sequencer.Leave(Conversation, six, Committed(Conversation, 6));
        Assert.That(_publisher.SeqsIn(Conversation), Is.Empty, "seq 5 may still be in flight");

        _sequencer.Leave(Conversation, five, Committed(Conversation, 5));
        Assert.That(_publisher.SeqsIn(Conversation), Is.EqualTo(new long[] { 5, 6 }));
    }

    [Test]
    public void A_store_that_fails_releases_the_messages_waiting_on_it()
    {
        var failing = _sequencer.Enter(Conversation);
        var seven = _sequencer.Enter(Conversation);
        var eight = _sequencer.Enter(Conversation);
        _sequencer.Leave(Conversation, eight, Committed(Conversation, 8));
        _sequencer.Leave(Conversation, seven, Committed(Conversation, 7));
        Assert.That(_publisher.SeqsIn(Conversation), Is.Empty);

        _sequencer.Leave(Conversation, failing, null);

        Assert.That(_publisher.SeqsIn(Conversation), Is.EqualTo(new long[] { 7, 8 }));
    }

    [Test]
    public void A_lost_seq_delays_the_next_ones_no_longer_than_the_stores_in_flight_beside_them()
    {
        var lost = _sequencer.Enter(Conversation);
        var six = _sequencer.Enter(Conversation);
        _sequencer.Leave(Conversation, six, Committed(Conversation, 6));
        var later = _sequencer.Enter(Conversation);

        // Seq 5 was committed but its reply never came back.
        _sequencer.Leave(Conversation, lost, null);

        Assert.That(_publisher.SeqsIn(Conversation), Is.EqualTo(new long[] { 6 }), "the store that entered after seq 6 committed cannot hold an earlier seq");

        _sequencer.Leave(Conversation, later, Committed(Conversation, 7));
        Assert.That(_publisher.SeqsIn(Conversation), Is.EqualTo(new long[] { 6, 7 }));
    }

    [Test]
    public void A_store_that_commits_nothing_publishes_nothing()
    {
        _sequencer.Leave(Conversation, _sequencer.Enter(Conversation), null);

        Assert.That(_publisher.Published, Is.Empty);
        Assert.That(_sequencer.ActiveConversations, Is.Zero);
    }

    [Test]
    public void No_state_is_left_once_every_store_has_left()
    {
        var first = _sequencer.Enter(1);
        var second = _sequencer.Enter(1);
        var other = _sequencer.Enter(2);
        Assert.That(_sequencer.ActiveConversations, Is.EqualTo(2));

        _sequencer.Leave(1, second, Committed(1, 2));
        _sequencer.Leave(2, other, null);
        Assert.That(_sequencer.ActiveConversations, Is.EqualTo(1));

        _sequencer.Leave(1, first, Committed(1, 1));
        Assert.That(_sequencer.ActiveConversations, Is.Zero);
    }

    [Test]
    public void Conversations_do_not_wait_for_each_other()
    {
        var inOne = _sequencer.Enter(1);
        var inTwo = _sequencer.Enter(2);

        _sequencer.Leave(2, inTwo, Committed(2, 30));

        Assert.That(_publisher.SeqsIn(2), Is.EqualTo(new long[] { 30 }), "conversation 1's store in flight is no reason to wait");
        Assert.That(_publisher.SeqsIn(1), Is.Empty);

        _sequencer.Leave(1, inOne, Committed(1, 4));

        Assert.That(_publisher.SeqsIn(1), Is.EqualTo(new long[] { 4 }));
    }

    [Test]
    public void A_later_burst_after_an_idle_moment_is_published_in_order_again()
    {
        _sequencer.Leave(Conversation, _sequencer.Enter(Conversation), Committed(Conversation, 1));

        var two = _sequencer.Enter(Conversation);
        var three = _sequencer.Enter(Conversation);
        var four = _sequencer.Enter(Conversation);
        _sequencer.Leave(Conversation, four, Committed(Conversation, 4));
        _sequencer.Leave(Conversation, two, Committed(Conversation, 2));
        _sequencer.Leave(Conversation, three, Committed(Conversation, 3));

        Assert.That(_publisher.SeqsIn(Conversation), Is.EqualTo(new long[] { 1, 2, 3, 4 }));
    }

    [Test]
    public void In_a_busy_conversation_a_message_is_not_held_back_by_stores_that_began_after_it()
    {
        // Stores overlap in a chain: store k commits seq k while store k+1, begun after seq k-1 was committed, is
        // still in flight. Store k+1 can only get a later seq than k-1, so seq k-1 has nothing left to wait for once
        // store k has left, however long the chain goes on.
        const int stores = 50;
        var inFlight = _sequencer.Enter(Conversation);
        for (var seq = 1; seq <= stores; seq++)
        {
            var next = _sequencer.Enter(Conversation);
            _sequencer.Leave(Conversation, inFlight, Committed(Conversation, seq));
            inFlight = next;

            if (seq >= 2)
            {
                Assert.That(_publisher.SeqsIn(Conversation), Does.Contain((long)seq - 1),
                    $"seq {seq - 1} has no earlier seq left in flight once store {seq} has left");
            }
        }
        _sequencer.Leave(Conversation, inFlight, null);

        Assert.That(_publisher.SeqsIn(Conversation), Is.EqualTo(Enumerable.Range(1, stores).Select(i => (long)i)));
    }

    [Test]
    public void Once_the_next_seq_is_known_each_message_is_published_at_once_even_with_stores_in_flight()
    {
        // The sequencer learns the next expected seq from what it publishes while the conversation is busy
        // (it forgets it when the conversation goes idle, so that no state is kept).
        var first = _sequencer.Enter(Conversation);
        var inFlight = _sequencer.Enter(Conversation);
        _sequencer.Leave(Conversation, first, Committed(Conversation, 1));
        Assert.That(_publisher.SeqsIn(Conversation), Is.Empty, "the other store entered before seq 1 committed and might hold an earlier seq");

        for (var seq = 2; seq <= 20; seq++)
        {
            var next = _sequencer.Enter(Conversation);
            _sequencer.Leave(Conversation, inFlight, Committed(Conversation, seq));
            inFlight = next;

            Assert.That(_publisher.SeqsIn(Conversation), Is.EqualTo(Enumerable.Range(1, seq).Select(i => (long)i)), $"seq {seq}");
        }
        _sequencer.Leave(Conversation, inFlight, null);
        Assert.That(_sequencer.ActiveConversations, Is.Zero);
    }

    [Test]
    public async Task Many_concurrent_stores_are_always_published_in_ascending_order_per_conversation()
    {
        const int conversations = 4;
        const int workers = 8;
        const int batchesPerWorker = 150;
        var seeds = new Random(1234);
        var nextSeq = new long[conversations + 1];
        var highestLeft = new long[conversations + 1];
        var seqLocks = Enumerable.Range(0, conversations + 1).Select(_ => new Lock()).ToArray();
        var committed = new ConcurrentDictionary<long, ConcurrentBag<long>>();
        var outOfOrder = 0;

        var tasks = Enumerable.Range(0, workers).Select(_ =>
        {
            var random = new Random(seeds.Next());
            return Task.Run(() =>
            {
                for (var batch = 0; batch < batchesPerWorker; batch++)
                {
                    // A few stores in flight at once from this worker, besides the other workers' ones.
                    var conversationId = random.Next(1, conversations + 1);
                    var size = random.Next(1, 5);
                    var tickets = Enumerable.Range(0, size).Select(_ => _sequencer.Enter(conversationId)).ToArray();
                    var publications = new Publication?[size];

                    // The database hands out seqs in commit order, after Enter; some stores commit nothing.
                    foreach (var i in Enumerable.Range(0, size).OrderBy(_ => random.Next()))
                    {
                        if (random.Next(10) != 0)
                        {
                            lock (seqLocks[conversationId])
                            {
                                var seq = ++nextSeq[conversationId];
                                committed.GetOrAdd(conversationId, _ => []).Add(seq);
                                publications[i] = Committed(conversationId, seq);
                            }
                        }
                        Thread.SpinWait(random.Next(0, 500));
                    }

                    // The replies come back in any order.
                    foreach (var i in Enumerable.Range(0, size).OrderBy(_ => random.Next()))
                    {
                        if (publications[i] is { } publication)
                        {
                            lock (seqLocks[conversationId])
                            {
                                if (publication.Seq < highestLeft[conversationId])
                                {
                                    Interlocked.Increment(ref outOfOrder);
                                }
                                highestLeft[conversationId] = Math.Max(highestLeft[conversationId], publication.Seq);
                            }
                        }
                        _sequencer.Leave(conversationId, tickets[i], publications[i]);
                        Thread.SpinWait(random.Next(0, 500));
                    }
                }
            });
        }).ToArray();

        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.That(outOfOrder, Is.GreaterThan(100), "the stores did complete out of seq order");
        Assert.That(committed.Keys, Is.EquivalentTo(Enumerable.Range(1, conversations).Select(i => (long)i)));
        foreach (var (conversationId, seqs) in committed)
        {
            var published = _publisher.SeqsIn(conversationId);
            Assert.That(published, Is.Ordered.Ascending, $"conversation {conversationId}");
            Assert.That(published, Is.EquivalentTo(seqs), $"conversation {conversationId}: every committed seq once");
        }
        Assert.That(_sequencer.ActiveConversations, Is.Zero);
    }

    [Test]
    public void Stores_completing_in_a_random_order_are_published_in_seq_order()
    {
        var random = new Random(1234);
        for (var round = 0; round < 200; round++)
        {
            var publisher = new RecordingPublisher();
            var sequencer = new ConversationSequencer(publisher);
            var count = random.Next(1, 20);
            // Seqs follow commit order, and a store commits only after it entered: entering all first allows any seq for any ticket.
            var tickets = Enumerable.Range(0, count).Select(_ => sequencer.Enter(Conversation)).ToArray();

            var order = Enumerable.Range(1, count).Select(i => (long)i).OrderBy(_ => random.Next()).ToArray();
            for (var i = 0; i < count; i++)
            {
                sequencer.Leave(Conversation, tickets[i], Committed(Conversation, order[i]));
            }

            Assert.That(publisher.SeqsIn(Conversation), Is.EqualTo(Enumerable.Range(1, count).Select(i => (long)i)), string.Join(",", order));
            Assert.That(sequencer.ActiveConversations, Is.Zero);
        }
    }

    /// <summary>The delivery seam, recording what would have been queued to subscribers.</summary>
    private sealed class RecordingPublisher : IChatPublisher
    {
        private readonly Lock _lock = new();
        private readonly List<(long ConversationId, OutboundFrame Frame, ChatConnection? Except)> _published = [];

        public IReadOnlyList<(long ConversationId, OutboundFrame Frame, ChatConnection? Except)> Published
        {
            get
            {
                lock (_lock)
                {
                    return [.. _published];
                }
            }
        }

        public long[] SeqsIn(long conversationId) =>
            [.. Published.Where(p => p.ConversationId == conversationId).Select(p => p.Frame.Seq)];

        public void PublishToConversation(long conversationId, OutboundFrame frame, ChatConnection? except = null)
        {
            lock (_lock)
            {
                _published.Add((conversationId, frame, except));
            }
        }

        public void PublishToUsers(IEnumerable<long> userIds, OutboundFrame frame) =>
            throw new AssertionException("the sequencer publishes to conversations only");
    }
}
