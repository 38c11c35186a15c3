using Chat.Core.Auth;
using Chat.Core.Connections;
using Chat.Core.Options;
using Chat.Data;
using Chat.Data.Users;
using Chat.Gateway.Auth;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Chat.Gateway.Api;

/// <summary>
/// Runs before every <c>/api</c> endpoint: resolves the token's user to a profile (creating it, or refreshing
/// name and avatar, as a WebSocket connection does) and turns an unreachable database into 503.
/// </summary>
internal sealed partial class ApiCaller(UserRepository users, IOptions<ChatDatabaseOptions> database, ILogger<ApiCaller> logger) : IEndpointFilter
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
        try
        {
            var profile = await users.UpsertFromClaimsAsync(identity.ExternalId, identity.DisplayName, identity.AvatarUrl, http.RequestAborted)
                .WaitAsync(database.Value.RequestTimeout, http.RequestAborted);
            http.Items[ItemKey] = new ConnectedUser(profile.Id, profile.ExternalId, profile.DisplayName, profile.AvatarUrl);
            return await next(context);
        }
        // Every database fault is 503, as at the WebSocket handshake: one that retrying may cure (unreachable, not
        // answering) and one an operator must (the database dropped or not migrated, a rotated password), which
        // readiness may not see. Anything else is a bug and stays a 500.
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            if (DatabaseResilience.IsUnavailable(e))
            {
                // Without the stack: every request of an outage comes here.
                DatabaseUnavailable(logger, http.Request.Method, http.Request.Path, e.Message);
            }
            else
            {
                DatabaseFailed(logger, e, http.Request.Method, http.Request.Path);
            }
            return TypedResults.Problem(
                statusCode: StatusCodes.Status503ServiceUnavailable,
                title: "Service Unavailable",
                detail: "The database is unreachable; retry later.");
        }
    }

    public static ConnectedUser Of(HttpContext context) =>
        context.Items[ItemKey] as ConnectedUser ?? throw new InvalidOperationException("The API caller filter did not run for this endpoint.");

    [LoggerMessage(1, LogLevel.Warning, "{Method} {Path}: the database is unavailable ({Reason}); answered 503")]
    private static partial void DatabaseUnavailable(ILogger logger, string method, string path, string reason);

    [LoggerMessage(2, LogLevel.Error, "{Method} {Path}: the database failed; answered 503")]
    private static partial void DatabaseFailed(ILogger logger, Exception exception, string method, string path);
}
