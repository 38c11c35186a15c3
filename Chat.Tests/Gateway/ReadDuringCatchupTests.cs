using Chat.Core.Connections;
using Chat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Chat.Tests.Gateway;

/// <summary>
/// A read made on one device while another is in its catch-up (protocol §10): the frame that tells the second device
/// is held until its <c>ready</c>, but the conversation's entry in that <c>ready</c> may have been read after the
/// move, and then says a later count than the frame.
/// </summary>
public sealed class ReadDuringCatchupTests : GatewayTest
{
    private const int ContentLength = 32 * 1024;

    // A first conversation of 300 messages of 32 KiB (9.6 MiB, more than every buffer between the server and a client
    // that does not read) fills the catch-up's first group, so that the laptop's catch-up stops there until it reads,
    // and the second conversation is read only after what the test does meanwhile.
    private const int CatchupLimit = 300;

    protected override Dictionary<string, string?> Settings => new()
    {
        ["Chat:Limits:MaxContentLength"] = ContentLength.ToString(),
        ["Chat:Limits:CatchupLimitPerConversation"] = CatchupLimit.ToString(),
        ["Chat:Limits:MaxFrameBytes"] = (40 * 1024).ToString(),
        ["Chat:Limits:SendQueueMaxBytes"] = (128 * 1024).ToString(),
    };

    [Test]
    public async Task A_read_frame_held_during_the_catch_up_whose_positions_are_below_readys_is_in_readys_count()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync("alice"), await Gateway.CreateUserAsync("bob"), await Gateway.CreateUserAsync("carol"));
        var first = await Gateway.CreateConversationAsync(alice, bob);
        var second = await Gateway.CreateConversationAsync(alice, carol);
        await FillAsync(first, bob, CatchupLimit, ContentLength);
        // More than the catch-up sends after the position the phone reads to: the laptop's ready says hasMore.
        var seconds = await FillAsync(second, carol, CatchupLimit + 100, 10);
        var phone = await ConnectAsync(alice, catchup: false);
        var c = await ConnectAsync(carol);
        var laptop = Track(await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(alice.ExternalId), receiveBufferBytes: 4096));
        laptop.PauseReading();
        var registry = Gateway.Services.GetRequiredService<ConnectionRegistry>();
        await Eventually.TrueAsync(
            () => registry.Connections().Any(x => x.UserId == alice.Id && !x.IsLive && x.Subscriptions.Contains(second)),
            "the laptop receives the second conversation and is still in its catch-up");

        // While the laptop's catch-up is held in the first conversation: the phone reads, then Carol sends one more.
        await phone.SendAsync(new { type = "read", conversationId = second, messageId = seconds[0] });
        await c.NextAsync(f => f.Type() == "read" && f.Long("senderId") == alice.Id);
        await c.SendMessageAsync(second, "one more");
        laptop.ResumeReading();
        await laptop.ReadUntilReadyAsync();

        var entry = laptop.Ready.GetProperty("conversations").EnumerateArray().Single(e => e.Long("conversationId") == second);
        var receipt = await laptop.NextAsync(f => f.Type() == "read" && f.Long("conversationId") == second);
        var stored = await Sql.UnreadCountAsync(second, alice.Id);
        Assert.That(entry.GetProperty("hasMore").GetBoolean(), Is.True, "the laptop does not hold the message sent after the read");
        Assert.That(entry.GetProperty("unreadCount").GetInt32(), Is.EqualTo(stored), "ready was read after the move and the message");
        Assert.That((receipt.Long("senderId"), receipt.Long("messageId")), Is.EqualTo((alice.Id, seconds[0])));
        Assert.That(receipt.Long("lastSeq"), Is.LessThan(entry.Long("lastSeq")), "the frame's count was taken before ready's");
        Assert.That(receipt.Long("lastChangeSeq"), Is.LessThanOrEqualTo(entry.Long("lastChangeSeq")));
        Assert.That(receipt.GetProperty("unreadCount").GetInt32(), Is.EqualTo(stored - 1),
            "the frame's count leaves out the message stored after it, which the laptop never receives: taken as it is, it would be one short");
        Assert.That(OwnCountAfterReady(entry, receipt), Is.EqualTo(stored), "the laptop that keeps ready's count, as protocol §10 says, holds the stored one");
    }

    /// <summary>
    /// The count a client keeps from <c>ready</c>'s entry and a <c>read</c> frame about its own user that follows it,
    /// by protocol §10, when no message reached it after <c>ready</c>: <c>ready</c>'s when the frame was taken at
    /// positions at or below <c>ready</c>'s and one of them below, else the frame's.
    /// </summary>
    private static int OwnCountAfterReady(System.Text.Json.JsonElement entry, System.Text.Json.JsonElement receipt)
    {
        var (seq, change) = (receipt.Long("lastSeq"), receipt.Long("lastChangeSeq"));
        var (readySeq, readyChange) = (entry.Long("lastSeq"), entry.Long("lastChangeSeq"));
        var older = seq <= readySeq && change <= readyChange && (seq < readySeq || change < readyChange);
        return (older ? entry : receipt).GetProperty("unreadCount").GetInt32();
    }

    /// <summary>Stores <paramref name="count"/> messages from <paramref name="sender"/> at once; returns their ids in seq order.</summary>
    private static async Task<List<long>> FillAsync(long conversation, TestUser sender, int count, int length) =>
        [.. (await Sql.QueryAsync<long>("""
            INSERT INTO messages (conversation_id, seq, sender_id, content, client_message_id)
            SELECT @Conversation, s, @Sender, repeat('x', @Length), 'fill-' || @Conversation || '-' || s
            FROM generate_series(1, @Count) AS s
            RETURNING id;
            UPDATE conversations SET last_seq = @Count WHERE id = @Conversation;
            """, new { Conversation = conversation, Sender = sender.Id, Count = count, Length = length })).Order()];
}
