using Chat.Core.Conversations;
using Chat.Core.Handlers;
using Microsoft.Extensions.Hosting;

namespace Chat.Core.Connections;

/// <summary>
/// Makes typing expire on its own: once a second, typing that was not renewed within <c>TypingTimeout</c> is
/// announced as stopped, so a client that crashed or lost the network mid-sentence never types forever.
/// </summary>
/// <remarks>
/// Typing that lapses in a conversation whose membership change is being applied is left for a later sweep (a
/// second on), as messages wait for the change (<see cref="MembershipFences"/>): announced now, its stop would
/// reach a member just removed, who still receives the conversation until the change is applied. A removed
/// member's own typing is stopped and announced by the removal itself.
/// </remarks>
public sealed class TypingSweeper(ConnectionRegistry registry, IChatPublisher publisher, MembershipFences fences, TimeProvider time) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                Sweep();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopped. Ending quietly matters when the host's start failed (a listen address in use): the host is
            // then disposed without being stopped, and a cancelled ExecuteAsync would be logged as a crashed
            // background service, stack trace and all, beside the start-up failure itself.
        }
    }

    internal void Sweep()
    {
        var now = time.GetTimestamp();
        // Asked only while some fence is up: nearly always, no sweep takes the fences' lock.
        Func<long, bool>? fenced = fences.AnyFenced ? fences.IsFenced : null;
        foreach (var connection in registry.Connections())
        {
            connection.Typing.StopExpired(now, conversationId =>
                TypingHandler.Publish(registry, publisher, connection, conversationId, isTyping: false, time.GetUtcNow().UtcDateTime), fenced);
        }
    }
}
