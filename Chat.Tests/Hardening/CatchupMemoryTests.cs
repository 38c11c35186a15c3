using Chat.Tests.Infrastructure;

namespace Chat.Tests.Hardening;

/// <summary>
/// What a connection's catch-up holds in the gateway's memory while a client reads it slowly, or not at all. Any
/// user can be in any number of conversations (they make them, or others add them), and their own messages come back
/// in every catch-up, so the replay must not be read into memory whole.
/// </summary>
public sealed class CatchupMemoryTests : GatewayTest
{
    private const int Conversations = 40;
    private const int PerConversation = 101;
    private const int ContentLength = 4000;

    [Test]
    public async Task A_stalled_catchup_over_many_conversations_holds_a_bounded_part_of_the_replay()
    {
        var (hoarder, other) = (await Gateway.CreateUserAsync("hoarder"), await Gateway.CreateUserAsync());
        var ids = new long[Conversations];
        for (var i = 0; i < Conversations; i++)
        {
            ids[i] = await Gateway.CreateConversationAsync(hoarder, other);
        }
        // As a client within the limits would have sent them (10 sockets at 10 messages a second: a few minutes).
        await Sql.ExecuteAsync("""
            INSERT INTO messages (conversation_id, seq, sender_id, content, client_message_id)
            SELECT c, s, @Sender, repeat('x', @Length), 'fill-' || c || '-' || s
            FROM unnest(@Ids) AS c, generate_series(1, @Count) AS s;
            UPDATE conversations SET last_seq = @Count WHERE id = ANY(@Ids);
            """, new { Sender = hoarder.Id, Length = ContentLength, Ids = ids, Count = PerConversation });
        var baseline = GC.GetTotalMemory(forceFullCollection: true);

        // A client that never reads: the server stops once its socket and half its queue are full.
        var stalled = Track(await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(hoarder.ExternalId), receiveBufferBytes: 4096));
        stalled.PauseReading();
        await Task.Delay(TimeSpan.FromSeconds(3));
        var growth = GC.GetTotalMemory(forceFullCollection: true) - baseline;
        TestContext.Out.WriteLine($"managed heap grew by {growth / 1024} KiB");

        // The whole replay is ~32 MiB of UTF-16 text; a part of it, plus the send queue, is what may be held.
        Assert.That(growth, Is.LessThan(12L * 1024 * 1024), "the whole catch-up was read into memory for a client that reads none of it");

        // And the catch-up is still complete once it reads.
        stalled.ResumeReading();
        await stalled.ReadUntilReadyAsync();
        Assert.That(stalled.Catchup, Has.Count.EqualTo(Conversations * (PerConversation - 1)));
        var ready = stalled.Ready.GetProperty("conversations").EnumerateArray().ToList();
        Assert.That(ready.Select(c => c.Long("conversationId")), Is.EqualTo(ids));
        Assert.That(ready.Select(c => c.GetProperty("hasMore").GetBoolean()), Is.All.True);
        Assert.That(stalled.Catchup.Select(m => (m.Long("conversationId"), m.Long("seq"))),
            Is.EqualTo(ids.SelectMany(c => Enumerable.Range(1, PerConversation - 1).Select(s => (c, (long)s)))));
    }
}
