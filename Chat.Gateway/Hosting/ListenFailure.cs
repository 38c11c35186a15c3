using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Chat.Gateway.Hosting;

/// <summary>
/// The server, whose failure to listen (an address in use, one this machine does not have, a port below 1024 for a
/// non-root user, a listen address that is not a URL) is the operator's to fix: it becomes a
/// <see cref="GatewayStartupException"/> naming the address. The host logs a failed start with the exception it got,
/// so turning it here, inside the start, is what keeps Kestrel's stack trace out of the log; a socket error that is
/// not an address in use would otherwise even escape <c>Program</c> and crash the process.
/// </summary>
internal sealed class ListenFailure(IServer server) : IServer
{
    public IFeatureCollection Features => server.Features;

    /// <summary>Puts this in the place of the registered server, which it wraps.</summary>
    public static void Wrap(IServiceCollection services)
    {
        var registered = services.LastOrDefault(descriptor => descriptor.ServiceType == typeof(IServer) && !descriptor.IsKeyedService);
        if (registered is null)
        {
            return;
        }
        services.Remove(registered);
        // The wrapped server is made here rather than by the container, so it is disposed with its wrapper.
        services.AddSingleton<IServer>(sp => new ListenFailure(
            (IServer)(registered.ImplementationInstance
                      ?? registered.ImplementationFactory?.Invoke(sp)
                      ?? ActivatorUtilities.CreateInstance(sp, registered.ImplementationType!))));
    }

    public async Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken)
        where TContext : notnull
    {
        // As configured (--urls, ASPNETCORE_URLS, ASPNETCORE_HTTP_PORTS): a socket error does not say which failed.
        var configured = Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];
        var addresses = string.Join(", ", configured);
        try
        {
            await server.StartAsync(application, cancellationToken);
        }
        catch (IOException e) when (e.InnerException is AddressInUseException)
        {
            // "Failed to bind to address http://127.0.0.1:8080: address already in use."
            throw new GatewayStartupException($"{e.Message} Choose another with --urls, ASPNETCORE_URLS or ASPNETCORE_HTTP_PORTS.", e);
        }
        catch (SocketException e)
        {
            throw new GatewayStartupException($"Failed to listen on {Describe(addresses)}: {e.Message}.", e);
        }
        catch (FormatException e) when (configured.Any(IsNotAUrl))
        {
            // Kestrel reading the listen addresses with BindingAddress.Parse: "Invalid url: 'htp:/bad'". Any other
            // FormatException is a bug, and crashes as one.
            throw new GatewayStartupException($"The listen address (--urls, ASPNETCORE_URLS or ASPNETCORE_HTTP_PORTS) is not a URL: {e.Message}", e);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => server.StopAsync(cancellationToken);

    public void Dispose() => server.Dispose();

    /// <summary>Whether Kestrel's parser of listen addresses refuses <paramref name="address"/>.</summary>
    private static bool IsNotAUrl(string address)
    {
        try
        {
            BindingAddress.Parse(address);
            return false;
        }
        catch (FormatException)
        {
            return true;
        }
    }

    private static string Describe(string addresses) =>
        addresses.Length > 0 ? $"{addresses} (--urls, ASPNETCORE_URLS or ASPNETCORE_HTTP_PORTS)" : "the listen address";
}
