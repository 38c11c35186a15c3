using Bench.LoadGen.Measurement;

namespace Bench.LoadGen.Targets;

/// <summary>A server the generator can drive: how one simulated user connects to it.</summary>
public interface IChatTarget
{
    /// <summary>Short name for reports: gateway, relay, signalr.</summary>
    string Name { get; }

    /// <summary>
    /// Connects <paramref name="user"/>, a member of <paramref name="conversationId"/>, and returns once the
    /// server says the connection is live (the <c>ready</c> frame), so that no delivery to it can be missed.
    /// </summary>
    Task<IBenchClient> ConnectAsync(BenchUser user, long conversationId, LoadEvents events, CancellationToken cancellationToken);
}

/// <summary>One connected simulated user.</summary>
public interface IBenchClient : IAsyncDisposable
{
    /// <summary>
    /// Queues a message without waiting: the generator is open-loop. False when the client's own backlog is full
    /// (the server stopped reading), and the message counts as lost.
    /// </summary>
    bool TrySend(in OutgoingMessage message);
}

/// <summary>A message to send: its conversation and its stamp (phase and scheduled time).</summary>
public readonly record struct OutgoingMessage(long ConversationId, Stamp Stamp);
