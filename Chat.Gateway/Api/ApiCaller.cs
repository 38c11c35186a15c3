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
    private const string DeadlineKey = "Chat.DatabaseDeadline";

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
            // The framework's defaults give no type for 429 (RFC 9110 does not define it), and every problem of this
            // API has one: clients tell problems apart by it.
            return TypedResults.Problem(
                statusCode: StatusCodes.Status429TooManyRequests,
                title: "Too Many Requests",
                detail: $"Too many requests: retry after {seconds} s (Chat:Limits:ApiRequestsPerSecond, ApiBurst).",
                type: "https://tools.ietf.org/html/rfc6585#section-4");
        }
        // The endpoint's own database work is bounded by the same deadline as the profile's: a database that stops
        // answering after the profile was read (a table locked by a schema change, a connection gone silent) is
        // answered 503 as one that never answered, not whenever it answers again. The endpoint's CancellationToken
        // was bound before this filter ran, so it is replaced; statements whose effect must not be left unknown
        // once sent (creating, adding, removing) run without a token and are not cut short.
        var aborted = http.RequestAborted;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        deadline.CancelAfter(database.Value.RequestTimeout);
        http.Items[DeadlineKey] = new Deadline(deadline, database.Value.RequestTimeout);
        for (var i = 0; i < context.Arguments.Count; i++)
        {
            if (context.Arguments[i] is CancellationToken)
            {
                context.Arguments[i] = deadline.Token;
            }
        }
        try
        {
            var profile = await RequestDatabase.WithinAsync(
                ct => users.UpsertFromClaimsAsync(identity.ExternalId, identity.DisplayName, identity.AvatarUrl, ct),
                database.Value.RequestTimeout,
                aborted);
            http.Items[ItemKey] = new ConnectedUser(profile.Id, profile.ExternalId, profile.DisplayName, profile.AvatarUrl);
            return await next(context);
        }
        catch (OperationCanceledException e) when (deadline.IsCancellationRequested && !aborted.IsCancellationRequested)
        {
            DatabaseUnavailable(logger, http.Request.Method, http.Request.Path, $"no answer within {database.Value.RequestTimeout} (Chat:Database:RequestTimeout): {e.Message}");
            return Unavailable();
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
            return Unavailable();
        }
    }

    private static IResult Unavailable() => TypedResults.Problem(
        statusCode: StatusCodes.Status503ServiceUnavailable,
        title: "Service Unavailable",
        detail: "The database is unavailable; retry later.");

    public static ConnectedUser Of(HttpContext context) =>
        context.Items[ItemKey] as ConnectedUser ?? throw new InvalidOperationException("The API caller filter did not run for this endpoint.");

    /// <summary>
    /// Starts the request's database deadline afresh once its body has been read: the time a client takes to send
    /// its body is the client's, and must not make the database look unavailable.
    /// </summary>
    public static void BodyRead(HttpContext context)
    {
        if (context.Items[DeadlineKey] is Deadline deadline)
        {
            deadline.Source.CancelAfter(deadline.Timeout);
        }
    }

    private sealed record Deadline(CancellationTokenSource Source, TimeSpan Timeout);

    [LoggerMessage(1, LogLevel.Warning, "{Method} {Path}: the database is unavailable ({Reason}); answered 503")]
    private static partial void DatabaseUnavailable(ILogger logger, string method, string path, string reason);

    [LoggerMessage(2, LogLevel.Error, "{Method} {Path}: the database refuses the gateway ({Reason}); answered 503")]
    private static partial void DatabaseRefuses(ILogger logger, string method, string path, string reason);
}
