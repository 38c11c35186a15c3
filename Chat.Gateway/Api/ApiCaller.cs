using Chat.Core.Auth;
using Chat.Core.Connections;
using Chat.Core.Metrics;
using Chat.Core.Options;
using Chat.Data;
using Chat.Data.Users;
using Chat.Gateway.Auth;
using Chat.Gateway.Hosting;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.Api;

/// <summary>
/// Runs before every <c>/api</c> endpoint: resolves the token's user to a profile (creating it, or refreshing
/// name and avatar, as a WebSocket connection does) and turns an unreachable database into 503.
/// </summary>
internal sealed partial class ApiCaller(UserRepository users, ApiRateLimiter rateLimiter, ChatMetrics metrics, IOptions<ChatDatabaseOptions> database, ILogger<ApiCaller> logger) : IEndpointFilter
{
    private const string ItemKey = "Chat.Caller";

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        if (ChatTokens.Identity(http.User, out var refusal) is not { } identity)
        {
            // A valid signature whose claims protocol §3 refuses: a bad token, answered as the JWT handler answers one.
            http.Response.Headers.WWWAuthenticate = BearerChallenge.InvalidToken(refusal);
            return TypedResults.Unauthorized();
        }
        // Before the database is asked anything: a flood costs it nothing.
        if (!rateLimiter.TryTake(identity.ExternalId, out var retryAfter))
        {
            metrics.ApiRequestsLimited.Add();
            var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
            http.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return TypedResults.Problem(
                statusCode: StatusCodes.Status429TooManyRequests,
                title: "Too Many Requests",
                detail: $"Too many requests: retry after {seconds} s (Chat:Limits:ApiRequestsPerSecond, ApiBurst).");
        }
        try
        {
            var profile = await RequestDatabase.WithinAsync(
                ct => users.UpsertFromClaimsAsync(identity.ExternalId, identity.DisplayName, identity.AvatarUrl, ct),
                database.Value.RequestTimeout,
                http.RequestAborted);
            http.Items[ItemKey] = new ConnectedUser(profile.Id, profile.ExternalId, profile.DisplayName, profile.AvatarUrl);
            return await next(context);
        }
        // 503 as at the WebSocket handshake: the database unreachable or not answering, or refusing the gateway for
        // a reason its operator must cure (dropped, not migrated, a rotated password), which readiness may not see.
        // Logged without the stack: every request of an outage comes here. Anything else is a bug and stays a 500.
        catch (Exception e) when (RequestDatabase.CannotServe(e))
        {
            if (DatabaseResilience.IsOperatorFault(e))
            {
                DatabaseRefuses(logger, http.Request.Method, http.Request.Path, e.Message);
            }
            else
            {
                DatabaseUnavailable(logger, http.Request.Method, http.Request.Path, e.Message);
            }
            return TypedResults.Problem(
                statusCode: StatusCodes.Status503ServiceUnavailable,
                title: "Service Unavailable",
                detail: "The database is unavailable; retry later.");
        }
    }

    public static ConnectedUser Of(HttpContext context) =>
        context.Items[ItemKey] as ConnectedUser ?? throw new InvalidOperationException("The API caller filter did not run for this endpoint.");

    [LoggerMessage(1, LogLevel.Warning, "{Method} {Path}: the database is unavailable ({Reason}); answered 503")]
    private static partial void DatabaseUnavailable(ILogger logger, string method, string path, string reason);

    [LoggerMessage(2, LogLevel.Error, "{Method} {Path}: the database refuses the gateway ({Reason}); answered 503")]
    private static partial void DatabaseRefuses(ILogger logger, string method, string path, string reason);
}
