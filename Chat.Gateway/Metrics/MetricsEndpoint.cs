using System.ComponentModel.DataAnnotations;
using Chat.Core.Metrics;
using Chat.Gateway.Hosting;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.Metrics;

/// <summary><c>Chat:Metrics</c>: the Prometheus endpoint.</summary>
public sealed class ChatMetricsOptions : IValidatableObject
{
    public const string Section = "Chat:Metrics";

    /// <summary>Serve <see cref="Path"/>. The <c>RealtimeChat</c> meter is there either way, for <c>dotnet-counters</c> and OpenTelemetry.</summary>
    public bool Enabled { get; set; } = true;

    // Required as well: the pattern lets an empty value pass (Chat__Metrics__Path=), which served the metrics at /.
    [Required(ErrorMessage = "Chat:Metrics:Path must be a path starting with /, e.g. /metrics.")]
    [RegularExpression("^/[A-Za-z0-9/_.-]*$", ErrorMessage = "Chat:Metrics:Path must be a path starting with /, e.g. /metrics.")]
    public string Path { get; set; } = "/metrics";

    /// <summary>The gateway's own paths: metrics there would make /health/live ambiguous (500, and a liveness probe that fails) or be unreachable.</summary>
    private static readonly string[] TakenPaths = ["/ws", "/health", "/api"];

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var path = Path.TrimEnd('/');
        if (TakenPaths.FirstOrDefault(taken => path.Equals(taken, StringComparison.OrdinalIgnoreCase)
                                               || path.StartsWith(taken + "/", StringComparison.OrdinalIgnoreCase)) is { } clash)
        {
            yield return new ValidationResult(
                $"Chat:Metrics:Path ({Path}) must not be under {clash}, which the gateway serves itself; e.g. /metrics.", [nameof(Path)]);
        }
    }
}

public static class MetricsEndpoint
{
    private const string PrometheusTextFormat = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>
    /// The gateway's metrics in the Prometheus text format. Counts and sizes only, nothing about any user; like the
    /// health endpoints it answers without a token, so expose it to the scraper, not to the internet.
    /// </summary>
    public static IEndpointRouteBuilder MapMetricsEndpoint(this IEndpointRouteBuilder endpoints)
    {
        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<ChatMetricsOptions>>().Value;
        if (options.Enabled)
        {
            endpoints.MapMethods(options.Path, ReadMethods.GetOrHead, (ChatMetrics metrics) => Results.Text(metrics.ToPrometheusText(), PrometheusTextFormat));
        }
        return endpoints;
    }
}
