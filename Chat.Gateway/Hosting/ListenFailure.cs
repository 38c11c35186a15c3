using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Chat.Gateway.Hosting;

/// <summary>
/// The server, whose failure to listen (an address in use, one this machine does not have, a port below 1024 for a
/// non-root user, a listen address that is not a URL, an endpoint without one) is the operator's to fix: it becomes a
/// <see cref="GatewayStartupException"/> naming the address and the setting it came from. The host logs a failed
/// start with the exception it got, so turning it here, inside the start, is what keeps Kestrel's stack trace out of
/// the log; a socket error that is not an address in use would otherwise even escape <c>Program</c> and crash the
/// process.
/// </summary>
internal sealed class ListenFailure(IServer server, IConfiguration configuration) : IServer
{
    private const string UrlSettings = "--urls, ASPNETCORE_URLS or ASPNETCORE_HTTP_PORTS";

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
                      ?? ActivatorUtilities.CreateInstance(sp, registered.ImplementationType!)),
            sp.GetRequiredService<IConfiguration>()));
    }

    public async Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken)
        where TContext : notnull
    {
        // As configured: a socket error does not say which address failed, nor any error which setting it came from.
        var addresses = Features.Get<IServerAddressesFeature>();
        var urls = (addresses?.Addresses ?? []).Select(address => new Listen(address, UrlSettings)).ToList();
        var endpoints = configuration.GetSection("Kestrel:Endpoints").GetChildren()
            .Select(endpoint => new Listen(endpoint["Url"] ?? "", $"{endpoint.Path}:Url")).ToList();
        // Kestrel listens on the endpoints instead of the urls when there are both (and warns so), unless told otherwise.
        var used = endpoints.Count > 0 && (urls.Count == 0 || addresses?.PreferHostingUrls != true) ? endpoints : urls;
        try
        {
            await server.StartAsync(application, cancellationToken);
        }
        catch (IOException e) when (e.InnerException is AddressInUseException)
        {
            // "Failed to bind to address http://127.0.0.1:8080: address already in use."
            throw new GatewayStartupException($"{e.Message} Choose another with {Settings(used)}.", e);
        }
        catch (SocketException e)
        {
            throw new GatewayStartupException($"Failed to listen on {Describe(used)}: {e.Message}.", e);
        }
        catch (FormatException e) when (endpoints.Concat(urls).FirstOrDefault(listen => IsNotAUrl(listen.Address)) is { } bad)
        {
            // Kestrel reading the listen addresses with BindingAddress.Parse: "Invalid url: 'htp:/bad'". Any other
            // FormatException is a bug, and crashes as one.
            throw new GatewayStartupException($"The listen address ({bad.Setting}) is not a URL: {e.Message}", e);
        }
        catch (InvalidOperationException e) when (endpoints.FirstOrDefault(listen => listen.Address.Length == 0) is { } missing)
        {
            // Kestrel: "The endpoint Web is missing the required 'Url' parameter."
            throw new GatewayStartupException($"{missing.Setting} is not set: an endpoint under Kestrel:Endpoints needs the URL to listen on.", e);
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

    private static string Settings(List<Listen> used) =>
        used.Count > 0 ? string.Join(", ", used.Select(listen => listen.Setting).Distinct()) : UrlSettings;

    private static string Describe(List<Listen> used) =>
        used.Count == 0 ? "the listen address"
        : used.All(listen => listen.Setting == UrlSettings) ? $"{string.Join(", ", used.Select(listen => listen.Address))} ({UrlSettings})"
        : string.Join(", ", used.Select(listen => $"{listen.Address} ({listen.Setting})"));

    /// <summary>A listen address and the setting it came from.</summary>
    private sealed record Listen(string Address, string Setting);
}
