using Bench.LoadGen;
using Bench.LoadGen.Load;
using Bench.LoadGen.Targets;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Bench;

/// <summary>
/// The benchmark's load generator, for a few seconds against the in-process gateway. It proves the harness and
/// the gateway still agree on the protocol: every message acked and stored, every delivery arrived, in order.
/// It asserts no speed: numbers come from bench/run.
/// </summary>
public sealed class LoadGeneratorSmokeTests : GatewayTest
{
    private const int GroupSize = 5;

    [Test]
    public async Task A_short_open_loop_run_gets_every_message_acked_stored_and_delivered_in_order()
    {
        var users = await Gateway.CreateUsersAsync(4 * GroupSize, "load");
        var conversations = new List<BenchConversation>();
        foreach (var members in users.Chunk(GroupSize))
        {
            conversations.Add(new BenchConversation(
                await Gateway.CreateConversationAsync(members),
                [.. members.Select(m => new BenchUser(m.Id, m.ExternalId, m.Name))]));
        }
        var layout = new BenchLayout(conversations);
        using var target = WebSocketTarget.Gateway(Gateway.WebSocketAddress, user => Gateway.TokenFor(user.ExternalId, user.DisplayName));

        await using var load = await ChatLoad.ConnectAsync(target, layout, parallelism: 8, connected: null, CancellationToken.None);
        var step = load.Start(new StepPlan(Rate: 100, Warmup: TimeSpan.FromMilliseconds(500), Window: TimeSpan.FromSeconds(2)), "smoke");
        await step.Completion;
        var drained = await step.DrainAsync(TimeSpan.FromSeconds(20));
        var (warmup, window) = step.Snapshot();

        Assert.That(drained, Is.True, $"everything answered and delivered (window: {window})");
        Assert.That(window.Sent, Is.GreaterThan(100), "the schedule sent at its rate");
        foreach (var phase in new[] { warmup, window })
        {
            Assert.That(phase.Unsent, Is.Zero, phase.Name);
            Assert.That(phase.Failed, Is.Zero, $"{phase.Name}: {load.Events.LastFailure}");
            Assert.That(phase.Acked, Is.EqualTo(phase.Sent), $"{phase.Name}: every message acked");
            Assert.That(phase.Delivered, Is.EqualTo(phase.Acked * (GroupSize - 1)), $"{phase.Name}: every other member got every message");
            Assert.That(phase.OutOfOrder, Is.Zero, $"{phase.Name}: deliveries in seq order");
        }
        Assert.That(window.Delivery.Count, Is.EqualTo(window.Delivered), "every delivery has a latency");
        Assert.That(load.Events.Stray, Is.Zero);
        Assert.That(load.Events.ConnectionsLost, Is.Zero);
        var stored = await Sql.ScalarAsync<long>("SELECT count(*) FROM messages WHERE conversation_id = ANY(@ids)",
            new { ids = conversations.Select(c => c.Id).ToArray() });
        Assert.That(stored, Is.EqualTo(warmup.Acked + window.Acked), "every ack names a stored message, and nothing else was stored");
    }
}
