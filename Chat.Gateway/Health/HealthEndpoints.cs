using Chat.Gateway.Hosting;
using Npgsql;

namespace Chat.Gateway.Health;

public static class HealthEndpoints
{
    /// <summary>What readiness waits for <c>SELECT 1</c>, as the README states it.</summary>
    private static readonly TimeSpan DatabaseProbeTimeout = TimeSpan.FromSeconds(2);

    /// <summary><c>/health/live</c>: the process runs. <c>/health/ready</c>: the gateway has started, PostgreSQL answers and the gateway is not shutting down.</summary>
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapMethods("/health/live", ReadMethods.GetOrHead, () => Results.Json(new HealthStatus("live")));

        endpoints.MapMethods("/health/ready", ReadMethods.GetOrHead, async (GatewayLifetime lifetime, NpgsqlDataSource dataSource, CancellationToken requestAborted) =>
        {
            if (lifetime.IsStopping)
            {
                return Results.Json(new HealthStatus("stopping"), statusCode: StatusCodes.Status503ServiceUnavailable);
            }
            if (!lifetime.IsStarted)
            {
                // Listening, but the schema is not applied yet (the database may be down, which the start waits for).
                return Results.Json(new HealthStatus("starting"), statusCode: StatusCodes.Status503ServiceUnavailable);
            }
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(requestAborted);
            timeout.CancelAfter(DatabaseProbeTimeout);
            try
            {
                await using var command = dataSource.CreateCommand("SELECT 1");
                // WaitAsync as well: Npgsql does not give up opening a connection to a server that accepted it but
                // never answers before its own connect timeout (15 s), whatever the token says.
                await command.ExecuteScalarAsync(timeout.Token).WaitAsync(DatabaseProbeTimeout, requestAborted);
                return Results.Json(new HealthStatus("ready"));
            }
            catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException)
            {
                return Results.Json(new HealthStatus("unavailable", "database unreachable"), statusCode: StatusCodes.Status503ServiceUnavailable);
            }
        });
        return endpoints;
    }

    private sealed record HealthStatus(
        string Status,
        [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Reason = null);
}
