using System.Collections.Concurrent;
using System.Net.WebSockets;
using Chat.Core.Connections;
using Chat.Core.Limits;
using Chat.Core.Metrics;
using Chat.Core.Options;
using Chat.Core.Sessions;
using Chat.Data;
using Chat.Data.Users;
using Chat.Gateway.Auth;
using Chat.Gateway.Hosting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.WebSockets;

/// <summary>
/// The WebSocket handshake: refuses what should never be upgraded (shutting down: 503; a page of an origin that
/// is not allowed: 403; no valid token: 401; not a WebSocket request: 400, or 426 when it asks for another
/// WebSocket version; the user holds too many connections, or opened too many lately: 429; the database cannot store the profile: 503; the
/// server holds too many: 503), provisions the user's profile from the token, then hands the socket to the
/// session runner for its lifetime.
/// </summary>
/// <remarks>
/// The handshake request stays alive as long as its socket, with everything it holds, so this middleware keeps it
/// small: it is built once with the pipeline (a factory-activated <c>IMiddleware</c> would be resolved for every
/// request from a request scope that then lives as long as the socket), and it lets go of the handshake's headers
/// and query, which carry the access token, once the socket is accepted.
/// </remarks>
public sealed partial class ChatWebSocketMiddleware(
    ChatSessionRunner sessions,
    UserRepository users,
    GatewayLifetime lifetime,
    UserConnectionLimiter perUser,
    HandshakeRateLimiter handshakes,
    HandshakeAuthenticator authenticator,
    IOptions<ChatSecurityOptions> security,
    IOptions<ChatDatabaseOptions> database,
    ChatMetrics metrics,
    ILogger<ChatWebSocketMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        if (await AcceptAsync(context) is not { } accepted)
        {
            metrics.HandshakesRefused.Add(StatusLabel(context.Response.StatusCode));
            return;
        }
        using (accepted.Admission)
        using (accepted.Socket)
        {
            await sessions.RunAsync(accepted.Socket, accepted.User, accepted.Catchup, lifetime.Stopping, context.RequestAborted, accepted.TokenExpires, accepted.Transport);
        }
    }

    /// <summary>
    /// The handshake: answers a refusal and returns null, or accepts the socket. A method of its own, so that
    /// what only the handshake needs (the token's identity, the profile row) goes with its state machine, not
    /// with the one that waits as long as the socket is open.
    /// </summary>
    private async Task<Accepted?> AcceptAsync(HttpContext context)
    {
        if (lifetime.IsStopping)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return null;
        }

        // A browser page of another site would otherwise open a socket with its visitor's token (cross-site
        // WebSocket hijacking). Programs send no Origin and pass.
        var origin = context.Request.Headers.Origin.ToString();
        if (!security.Value.Allows(origin))
        {
            LogOriginRefused(origin);
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            return null;
        }

        // Authentication comes before anything else is revealed: no upgrade without a valid token.
        var authentication = await authenticator.AuthenticateAsync(context.Request);
        if (authentication.Identity is not { } identity)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.Headers.WWWAuthenticate = authentication.Challenge;
            return null;
        }

        if (!context.WebSockets.IsWebSocketRequest)
        {
            if (AsksForAnotherWebSocketVersion(context.Request))
            {
                // RFC 6455 §4.4: name the version this server speaks.
                context.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
                context.Response.Headers.SecWebSocketVersion = SupportedWebSocketVersion;
                return null;
            }
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            context.Response.ContentType = "text/plain; charset=utf-8";
            await context.Response.WriteAsync("This endpoint speaks WebSocket only: send an upgrade request.");
            return null;
        }

        // Before the database is asked anything, and counted whether or not the connection is then admitted: a
        // client that reconnects in a loop costs a profile write, a catch-up and two presence broadcasts each time.
        if (!handshakes.TryTake(identity.ExternalId, out var retryAfter))
        {
            HandshakesLimited(logger, identity.ExternalId);
            context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
            context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return null;
        }

        var admitted = perUser.TryAdmit(identity.ExternalId);
        if (admitted is null)
        {
            TooManyConnections(logger, identity.ExternalId);
            context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
            return null;
        }
        try
        {
            UserProfile profile;
            try
            {
                profile = await RequestDatabase.WithinAsync(
                    ct => users.UpsertFromClaimsAsync(identity.ExternalId, identity.DisplayName, identity.AvatarUrl, ct),
                    database.Value.RequestTimeout,
                    context.RequestAborted);
            }
            catch (Exception e) when (RequestDatabase.CannotServe(e))
            {
                // Without the stack: every client retrying its handshake during an outage comes here.
                if (DatabaseResilience.IsOperatorFault(e))
                {
                    DatabaseRefuses(logger, identity.ExternalId, e.Message);
                }
                else
                {
                    DatabaseUnavailable(logger, identity.ExternalId, e.Message);
                }
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return null;
            }

            // Clients that keep their own position and will sync opt out of the replay on connect.
            var catchup = !string.Equals(context.Request.Query["catchup"], "false", StringComparison.OrdinalIgnoreCase);

            WebSocket socket;
            try
            {
                socket = await context.WebSockets.AcceptWebSocketAsync();
            }
            catch (InvalidOperationException e) when (!context.Response.HasStarted)
            {
                // Kestrel refuses the upgrade past MaxConcurrentUpgradedConnections (Chat:Limits:MaxConnections).
                UpgradeRefused(logger, e.Message);
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return null;
            }
            var transport = CloseReasonUpgrade.Release(context);
            ReleaseHandshake(context);
            var user = new ConnectedUser(profile.Id, profile.ExternalId, profile.DisplayName, profile.AvatarUrl);
            var accepted = new Accepted(socket, user, catchup, identity.ExpiresAt, admitted, transport);
            // The socket holds the admission from here until it ends.
            admitted = null;
            return accepted;
        }
        finally
        {
            admitted?.Dispose();
        }
    }

    private const string SupportedWebSocketVersion = "13";

    /// <summary>An upgrade to WebSocket that names a version other than 13 (RFC 6455), which the server does not speak.</summary>
    private static bool AsksForAnotherWebSocketVersion(HttpRequest request) =>
        request.Headers.Upgrade.ToString().Contains("websocket", StringComparison.OrdinalIgnoreCase)
        && request.Headers.SecWebSocketVersion.ToString() is { Length: > 0 } version
        && version != SupportedWebSocketVersion;

    // The refusals are a handful of statuses: their labels are made once.
    private static string StatusLabel(int status) => status switch
    {
        400 => "400",
        426 => "426",
        401 => "401",
        403 => "403",
        429 => "429",
        503 => "503",
        _ => status.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>An accepted socket, its user, the admission it holds against the per-user limit until it ends, and the stream under it.</summary>
    private readonly record struct Accepted(WebSocket Socket, ConnectedUser User, bool Catchup, DateTimeOffset? TokenExpires, IDisposable Admission, CloseReasonStream? Transport);

    /// <summary>
    /// Drops what the handshake request holds and the socket no longer needs: the header values, and the query
    /// (a token there has three copies: in the raw target, the query string and its parsed form), so that no copy
    /// of the token, some 300 characters, stays in memory for the socket's lifetime.
    /// </summary>
    private static void ReleaseHandshake(HttpContext context)
    {
        context.Request.Headers.Clear();
        context.Request.Query = QueryCollection.Empty;
        context.Request.QueryString = QueryString.Empty;
        if (context.Features.Get<IHttpRequestFeature>() is { } request)
        {
            request.RawTarget = context.Request.Path.Value ?? string.Empty;
        }
    }

    [LoggerMessage(1, LogLevel.Error, "Handshake of {ExternalId} refused with 503: the database refuses the gateway ({Reason})")]
    private static partial void DatabaseRefuses(ILogger logger, string externalId, string reason);

    [LoggerMessage(5, LogLevel.Warning, "Handshake of {ExternalId} refused with 503: the database is unavailable ({Reason})")]
    private static partial void DatabaseUnavailable(ILogger logger, string externalId, string reason);

    /// <summary>How many refused origins are remembered so as to be logged once each; then they are forgotten.</summary>
    private const int RememberedOrigins = 1000;

    /// <summary>At most this many Warning lines a minute about refused origins, new ones included.</summary>
    private const int OriginWarningsPerMinute = 10;

    private readonly Lock _originWarningsLock = new();
    private long _originWarningsMinute;
    private int _originWarnings;

    /// <summary>The longest part of an origin a log line repeats: the header is the client's to fill.</summary>
    private const int LoggedOriginLength = 200;

    private readonly ConcurrentDictionary<string, bool> _refusedOrigins = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// At Warning the first time an origin is refused, so that a page left out of Chat:Security:AllowedOrigins
    /// shows at once; at Debug after that. The requests need no token: a hostile page that makes its visitors'
    /// browsers retry would otherwise write a line per attempt, and a script sending a new Origin each time is held
    /// to a few Warning lines a minute (and cannot fill the memory of origins for good: it is cleared when full).
    /// chat_handshakes_refused_total{status="403"} counts every refusal.
    /// </summary>
    private void LogOriginRefused(string origin)
    {
        var shown = origin.Length > LoggedOriginLength ? origin[..LoggedOriginLength] + "..." : origin;
        if (_refusedOrigins.Count >= RememberedOrigins)
        {
            _refusedOrigins.Clear();
        }
        if (_refusedOrigins.TryAdd(shown, true) && TakeOriginWarning())
        {
            OriginRefused(logger, shown);
        }
        else
        {
            OriginRefusedAgain(logger, shown);
        }
    }

    private bool TakeOriginWarning()
    {
        var minute = Environment.TickCount64 / 60_000;
        lock (_originWarningsLock)
        {
            if (minute != _originWarningsMinute)
            {
                (_originWarningsMinute, _originWarnings) = (minute, 0);
            }
            return ++_originWarnings <= OriginWarningsPerMinute;
        }
    }

    [LoggerMessage(2, LogLevel.Warning, "Handshake from origin {Origin} refused with 403: not in Chat:Security:AllowedOrigins (later refusals of this origin are logged at Debug)")]
    private static partial void OriginRefused(ILogger logger, string origin);

    [LoggerMessage(6, LogLevel.Debug, "Handshake from origin {Origin} refused with 403 again")]
    private static partial void OriginRefusedAgain(ILogger logger, string origin);

    [LoggerMessage(3, LogLevel.Warning, "Handshake of {ExternalId} refused with 429: Chat:Limits:MaxConnectionsPerUser reached")]
    private static partial void TooManyConnections(ILogger logger, string externalId);

    // Debug: a client looping over its handshake makes one line per attempt; chat_handshakes_refused_total counts them.
    [LoggerMessage(7, LogLevel.Debug, "Handshake of {ExternalId} refused with 429: Chat:Limits:HandshakesPerSecond exceeded")]
    private static partial void HandshakesLimited(ILogger logger, string externalId);

    [LoggerMessage(4, LogLevel.Warning, "Upgrade refused with 503: {Reason}")]
    private static partial void UpgradeRefused(ILogger logger, string reason);
}

public static class ChatWebSocketEndpoint
{
    /// <summary>
    /// Maps the chat socket at <paramref name="path"/>, with WebSocket keep-alive pings from <c>Chat:Limits</c>, and
    /// a reason on the closes the WebSocket library sends itself (<see cref="CloseReasonUpgrade"/>).
    /// </summary>
    /// <remarks>
    /// A branch on a predicate rather than <c>Map</c>: <c>Map</c> awaits its branch, which would keep one more
    /// state machine, and the rewritten path base, alive for every open socket.
    /// </remarks>
    public static IApplicationBuilder MapChatWebSocket(this WebApplication app, string path)
    {
        var limits = app.Services.GetRequiredService<IOptions<ChatLimitsOptions>>().Value;
        var socketPath = new PathString(path);
        var middleware = ActivatorUtilities.CreateInstance<ChatWebSocketMiddleware>(app.Services);
        return app.MapWhen(context => context.Request.Path.StartsWithSegments(socketPath), ws => ws
            .Use(CloseReasonUpgrade.InstallAsync)
            .UseWebSockets(new WebSocketOptions
            {
                KeepAliveInterval = limits.KeepAliveInterval,
                KeepAliveTimeout = limits.KeepAliveTimeout,
            })
            .Run(middleware.InvokeAsync));
    }
}
