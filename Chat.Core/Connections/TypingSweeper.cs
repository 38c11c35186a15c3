using Chat.Core.Handlers;
using Microsoft.Extensions.Hosting;

namespace Chat.Core.Connections;

/// <summary>
/// Makes typing expire on its own: once a second, typing that was not renewed within <c>TypingTimeout</c> is
/// announced as stopped, so a client that crashed or lost the network mid-sentence never types forever.
/// </summary>
public sealed class TypingSweeper(ConnectionRegistry registry, IChatPublisher publisher, TimeProvider time) : BackgroundService
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
        foreach (var connection in registry.Connections())
        {
            connection.Typing.StopExpired(now, conversationId =>
                TypingHandler.Publish(publisher, connection, conversationId, isTyping: false, time.GetUtcNow().UtcDateTime));
        }
    }
}
