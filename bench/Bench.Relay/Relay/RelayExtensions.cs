namespace Bench.Relay.Relay;

public static class RelayExtensions
{
    public static IServiceCollection AddRelay(this IServiceCollection services)
    {
        services.AddSingleton<RelayRooms>();
        services.AddSingleton<RelayEndpoint>();
        return services;
    }

    /// <summary>The relay socket at <paramref name="path"/>, with the gateway's default keep-alive.</summary>
    public static IApplicationBuilder MapRelay(this WebApplication app, string path) =>
        app.Map(path, ws => ws
            .UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(15), KeepAliveTimeout = TimeSpan.FromSeconds(15) })
            .Run(context => context.RequestServices.GetRequiredService<RelayEndpoint>().RunAsync(context)));
}
