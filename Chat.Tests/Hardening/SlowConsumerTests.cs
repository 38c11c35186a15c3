using System.Net.WebSockets;
using Chat.Core.Connections;
using Chat.Core.Protocol;
using Chat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Chat.Tests.Hardening;

/// <summary>A client that stops reading its socket while its conversation is busy, over real TCP.</summary>
public sealed class SlowConsumerTests : GatewayTest
{
    private const int QueueBytes = 128 * 1024;
    private const int FrameBytes = 40 * 1024;
    private const int ContentLength = 32 * 1024;
    private const int Messages = 400;

    protected override Dictionary<string, string?> Settings => new()
    {
        ["Chat:Limits:SendQueueMaxBytes"] = QueueBytes.ToString(),
        ["Chat:Limits:MaxFrameBytes"] = FrameBytes.ToString(),
        ["Chat:Limits:MaxContentLength"] = ContentLength.ToString(),
        ["Chat:Limits:CloseTimeout"] = "00:00:10",
    };

    [Test]
    public async Task A_client_that_stops_reading_is_closed_as_a_slow_consumer_and_nobody_else_notices()
    {
        var (alice, bob, sam) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync("slow"));
        var conversation = await Gateway.CreateConversationAsync(alice, bob, sam);
        // A small, fixed receive buffer: the paused client pushes back at once instead of after megabytes.
        var s = Track(await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(sam.ExternalId), receiveBufferBytes: 4096));
        await s.ReadUntilReadyAsync();
        var b = await ConnectAsync(bob);
        var a = await ConnectAsync(alice);
        await a.SendMessageAsync(conversation, "warm-up");
        await b.NextAsync("message");
        await s.NextAsync("message");
        var registry = Gateway.Services.GetRequiredService<ConnectionRegistry>();
        var baseline = GC.GetTotalMemory(forceFullCollection: true);

        s.PauseReading();
        var received = Task.Run(async () =>
        {
            var seqs = new List<long>();
            while (seqs.Count < Messages)
            {
                seqs.Add((await b.NextAsync("message")).Long("seq"));
            }
            return seqs;
        });
        var content = new string('x', ContentLength);
        var acks = 0;
        for (var i = 0; i < Messages; i++)
        {
            if ((await a.SendMessageAsync(conversation, content, $"busy-{i}")).Type() == "ack")
            {
                acks++;
            }
        }
        var seqs = await received;
        // Everything a slow consumer's queue could hold is bounded; a queue that kept growing would hold ~12 MiB here.
        var growth = GC.GetTotalMemory(forceFullCollection: true) - baseline;
        // The server gave up on the stalled client while it was still stalled: it left the registry.
        Assert.That(await ConnectionLimitTests.EventuallyAsync(() => Task.FromResult(registry.PresenceOf(sam.Id)), PresenceStatus.Offline), Is.EqualTo(PresenceStatus.Offline));

        s.ResumeReading();
        await s.WaitClosedAsync();

        Assert.That(s.CloseStatus, Is.EqualTo(WebSocketCloseStatus.PolicyViolation));
        Assert.That(s.CloseDescription, Is.EqualTo("slow consumer"));
        Assert.That(acks, Is.EqualTo(Messages), "the sender was never held up");
        Assert.That(seqs, Is.EqualTo(Enumerable.Range(2, Messages).Select(i => (long)i)), "the other member got everything, in order");
        Assert.That(growth, Is.LessThan(4L * 1024 * 1024), $"memory stayed flat while {Messages * ContentLength / (1024 * 1024)} MiB went by a stalled client");
        TestContext.Out.WriteLine($"managed heap grew by {growth / 1024} KiB");
        ReliabilityReport.Ledger.FaultInjected("client stops reading while its conversation is busy");
        ReliabilityReport.Ledger.FaultSurvived("client stops reading while its conversation is busy");
        ReliabilityReport.Ledger.Messages("busy conversation with a stalled member", Messages, acks,
            await Sql.MessageCountAsync(conversation) - 1, seqs.Count, Messages - acks, seqs.Count - seqs.Distinct().Count());
    }

    [Test]
    public async Task A_client_that_sends_thousands_of_frames_before_reading_an_answer_is_read_at_its_pace_and_not_closed()
    {
        const int frames = 3_000;
        var user = await Gateway.CreateUserAsync("pipelining");
        var client = Track(await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(user.ExternalId), receiveBufferBytes: 4096));
        await client.ReadUntilReadyAsync();

        // Every frame is answered with an error, some 360 KB in all, against a queue of 64 KiB: the answers pile up
        // at the server unless it stops reading until the client reads them.
        client.PauseReading();
        var sending = Task.Run(async () =>
        {
            for (var i = 0; i < frames; i++)
            {
                await client.SendTextAsync("{");
            }
            await client.SendAsync(new { type = "sentinel" });
        });
        await Task.Delay(TimeSpan.FromSeconds(1));
        client.ResumeReading();
        await sending.WaitAsync(TimeSpan.FromSeconds(20));

        var answers = new List<System.Text.Json.JsonElement>();
        while (answers.Count < frames)
        {
            answers.Add(await client.NextAsync("error"));
        }
        var last = await client.NextAsync("error");

        Assert.That(answers.Select(a => a.Str("code")), Is.All.EqualTo("bad_request"));
        Assert.That(last.Str("code"), Is.EqualTo("unknown_type"));
        Assert.That(client.State, Is.EqualTo(WebSocketState.Open));
    }
}
