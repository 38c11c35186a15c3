namespace Chat.Gateway.Hosting;

/// <summary>Whether the gateway is shutting down: readiness turns 503, upgrades are refused, sockets close with 1001.</summary>
public sealed class GatewayLifetime(IHostApplicationLifetime lifetime)
{
    public CancellationToken Stopping => lifetime.ApplicationStopping;

    public bool IsStopping => lifetime.ApplicationStopping.IsCancellationRequested;
}
