namespace Chat.Gateway.Hosting;

/// <summary>
/// The server listens before the start is over (<see cref="DatabaseStartup"/> applies the schema once it does, so
/// that an address in use is reported at once), but serves nothing that reads the database until then: every
/// request but the health endpoints is answered 503, and readiness says <c>starting</c>.
/// </summary>
public static class StartGate
{
    public static IApplicationBuilder UseStartGate(this IApplicationBuilder app)
    {
        var lifetime = app.ApplicationServices.GetRequiredService<GatewayLifetime>();
        return app.Use((context, next) =>
            lifetime.IsStarted || context.Request.Path.StartsWithSegments("/health", StringComparison.Ordinal)
                ? next(context)
                : TypedResults.Problem(
                    statusCode: StatusCodes.Status503ServiceUnavailable,
                    title: "Service Unavailable",
                    detail: "The gateway is starting; retry later.").ExecuteAsync(context));
    }
}
