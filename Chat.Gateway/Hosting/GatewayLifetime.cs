using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.Hosting;

/// <summary>Whether the gateway is shutting down: readiness turns 503, upgrades are refused, sockets close with 1001.</summary>
public sealed class GatewayLifetime(IHostApplicationLifetime lifetime)
{
    public CancellationToken Stopping => lifetime.ApplicationStopping;

    public bool IsStopping => lifetime.ApplicationStopping.IsCancellationRequested;
}

/// <summary><c>Chat:Shutdown</c>.</summary>
public sealed class ChatShutdownOptions
{
    public const string Section = "Chat:Shutdown";

    /// <summary>
    /// How long the listener stays up after a stop signal, answering readiness with 503 and refusing upgrades,
    /// so that a load balancer notices before connections are refused outright. Sockets close with 1001 at once.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:05:00", ErrorMessage = "Chat:Shutdown:DrainDelay must be between {1} and {2}.")]
    public TimeSpan DrainDelay { get; set; } = TimeSpan.Zero;
}

/// <summary>Holds the stop sequence for <see cref="ChatShutdownOptions.DrainDelay"/> before the server stops listening.</summary>
internal sealed class ShutdownDrain(IOptions<ChatShutdownOptions> options) : IHostedLifecycleService
{
    // Runs after ApplicationStopping has fired and before any hosted service, Kestrel included, is stopped.
    public Task StoppingAsync(CancellationToken cancellationToken) =>
        options.Value.DrainDelay > TimeSpan.Zero ? Task.Delay(options.Value.DrainDelay, cancellationToken) : Task.CompletedTask;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
