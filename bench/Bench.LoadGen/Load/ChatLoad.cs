using Bench.LoadGen.Measurement;
using Bench.LoadGen.Targets;

namespace Bench.LoadGen.Load;

/// <summary>
/// Every user of a layout connected to one target, ready to run stepped open-loop loads. Disposing closes every
/// connection.
/// </summary>
public sealed class ChatLoad : IAsyncDisposable
{
    private readonly PhaseRegistry _phases;
    private readonly List<(IBenchClient Client, long ConversationId)> _clients;
    private readonly int _seed;

    private ChatLoad(IChatTarget target, BenchLayout layout, PhaseRegistry phases, LoadEvents events, List<(IBenchClient, long)> clients, int seed)
    {
        Target = target;
        Layout = layout;
        _phases = phases;
        Events = events;
        _clients = clients;
        _seed = seed;
    }

    public IChatTarget Target { get; }

    public BenchLayout Layout { get; }

    public LoadEvents Events { get; }

    public int ConnectionCount => _clients.Count;

    /// <summary>
    /// Connects every user of <paramref name="layout"/>, <paramref name="parallelism"/> at a time, each up to its
    /// <c>ready</c>. <paramref name="connected"/> hears the running count. When one connection fails, those
    /// already open are closed and the failure is thrown.
    /// </summary>
    public static async Task<ChatLoad> ConnectAsync(
        IChatTarget target,
        BenchLayout layout,
        int parallelism,
        IProgress<int>? connected,
        CancellationToken cancellationToken,
        int seed = 1)
    {
        var phases = new PhaseRegistry();
        var events = new LoadEvents(phases, layout.MembersPerConversation);
        var clients = await ConnectAllAsync(target, layout, events, parallelism, connected, cancellationToken);
        return new ChatLoad(target, layout, phases, events, clients, seed);
    }

    /// <summary>Closes connections <paramref name="parallelism"/> at a time.</summary>
    public static async Task DisconnectAsync(IEnumerable<IBenchClient> clients, int parallelism) =>
        await Parallel.ForEachAsync(clients, new ParallelOptions { MaxDegreeOfParallelism = parallelism },
            async (client, _) => await client.DisposeAsync());

    /// <summary>Starts a step; the schedule begins at once. Await <see cref="RunningStep.Completion"/>, then drain.</summary>
    public RunningStep Start(StepPlan plan, string label, CancellationToken cancellationToken = default)
    {
        var warmup = _phases.Add($"{label} warm-up");
        var window = _phases.Add(label);
        // The same shuffled sender order every step, so steps differ in rate only.
        var order = _clients.Select(c => new OpenLoopScheduler.Sender(c.Client, c.ConversationId)).ToArray();
        new Random(_seed).Shuffle(order);
        return RunningStep.Start(plan, order, warmup, window, cancellationToken);
    }

    private static async Task<List<(IBenchClient Client, long ConversationId)>> ConnectAllAsync(
        IChatTarget target,
        BenchLayout layout,
        LoadEvents events,
        int parallelism,
        IProgress<int>? connected,
        CancellationToken cancellationToken)
    {
        var clients = new (IBenchClient Client, long ConversationId)[layout.Users.Count];
        var count = 0;
        try
        {
            await Parallel.ForEachAsync(
                Enumerable.Range(0, layout.Users.Count),
                new ParallelOptions { MaxDegreeOfParallelism = parallelism, CancellationToken = cancellationToken },
                async (index, ct) =>
                {
                    var (user, conversationId) = layout.Users[index];
                    clients[index] = (await target.ConnectAsync(user, conversationId, events, ct), conversationId);
                    connected?.Report(Interlocked.Increment(ref count));
                });
        }
        catch
        {
            await DisconnectAsync(clients.Where(c => c.Client is not null).Select(c => c.Client), parallelism);
            throw;
        }
        return [.. clients];
    }

    /// <summary>Closes every connection, <see cref="DisconnectParallelism"/> at a time.</summary>
    public async ValueTask DisposeAsync() => await DisconnectAsync(_clients.Select(c => c.Client), DisconnectParallelism);

    public const int DisconnectParallelism = 64;
}
