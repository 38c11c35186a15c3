using System.ComponentModel.DataAnnotations;
using Chat.Core.Options;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.Hosting;

/// <summary>
/// Whether the gateway has started (until then only health is served: <see cref="StartGate"/>), and whether it is
/// shutting down: readiness turns 503, upgrades are refused, sockets close with 1001.
/// </summary>
public sealed class GatewayLifetime(IHostApplicationLifetime lifetime)
{
    /// <summary>Every service has started, the schema is applied: the host's start is over.</summary>
    public bool IsStarted => lifetime.ApplicationStarted.IsCancellationRequested;

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
    [Range(typeof(TimeSpan), "00:00:00", "00:05:00", ErrorMessage = "Chat:Shutdown:DrainDelay must be between 00:00:00 and 00:05:00 (hh:mm:ss; a bare number is read as days).")]
    public TimeSpan DrainDelay { get; set; } = TimeSpan.Zero;
}

/// <summary>
/// The whole stop must fit in the host's shutdown timeout: past it the host cancels what is still stopping, sockets
/// included, so a drain and a close that could outlast it would cut clients off without their 1001.
/// </summary>
internal sealed class ChatShutdownOptionsValidator(IOptions<HostOptions> host, IOptions<ChatLimitsOptions> limits) : IValidateOptions<ChatShutdownOptions>
{
    public ValidateOptionsResult Validate(string? name, ChatShutdownOptions options)
    {
        var shutdownTimeout = host.Value.ShutdownTimeout;
        var closeTimeout = limits.Value.CloseTimeout;
        return options.DrainDelay + closeTimeout < shutdownTimeout
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(
                $"Chat:Shutdown:DrainDelay ({options.DrainDelay:c}) plus Chat:Limits:CloseTimeout ({closeTimeout:c}) must be less than " +
                $"the host's shutdown timeout ({shutdownTimeout:c}, set with shutdownTimeoutSeconds): shorten them or raise it.");
    }
}

/// <summary>Holds the stop sequence for <see cref="ChatShutdownOptions.DrainDelay"/> before the server stops listening.</summary>
internal sealed class ShutdownDrain(IOptions<ChatShutdownOptions> options) : IHostedLifecycleService
{
    // Runs after ApplicationStopping has fired and before any hosted service, Kestrel included, is stopped.
    // The host cancels the token when its shutdown timeout runs out: the drain is then over, not failed, and the stop
    // goes on (a throw here would end the process with an unhandled TaskCanceledException).
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (options.Value.DrainDelay > TimeSpan.Zero)
        {
            await Task.Delay(options.Value.DrainDelay, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
