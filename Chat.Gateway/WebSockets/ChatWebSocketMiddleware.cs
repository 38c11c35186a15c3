using System.Net.WebSockets;
using Chat.Core.Connections;
using Chat.Core.Limits;
using Chat.Core.Options;
using Chat.Core.Sessions;
using Chat.Data.Users;
using Chat.Gateway.Auth;
using Chat.Gateway.Hosting;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.WebSockets;

/// <summary>
/// The WebSocket handshake: refuses what should never be upgraded (shutting down: 503; a page of an origin that
/// is not allowed: 403; no valid token: 401; not a WebSocket request: 400; the user holds too many
/// connections: 429; the server holds too many: 503), provisions the user's profile from the token, then hands
/// the socket to the session runner for its lifetime.
/// </summary>
public sealed partial class ChatWebSocketMiddleware(
    ChatSessionRunner sessions,
    UserRepository users,
    GatewayLifetime lifetime,
    UserConnectionLimiter perUser,
    HandshakeAuthenticator authenticator,
    IOptions<ChatSecurityOptions> security,
    ILogger<ChatWebSocketMiddleware> logger) : IMiddleware
{
    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (lifetime.IsStopping)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return;
        }

        // A browser page of another site would otherwise open a socket with its visitor's token (cross-site
        // WebSocket hijacking). Programs send no Origin and pass.
        var origin = context.Request.Headers.Origin.ToString();
        if (!security.Value.Allows(origin))
        {
            OriginRefused(logger, origin);
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            return;
        }

        // Authentication comes before anything else is revealed: no upgrade without a valid token.
        if (await authenticator.AuthenticateAsync(context.Request) is not { } identity)
        {
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.Headers.WWWAuthenticate = HandshakeAuthenticator.TokenOf(context.Request) is null
                ? "Bearer"
                : "Bearer error=\"invalid_token\"";
            return;
        }

        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("This endpoint speaks WebSocket only: send an upgrade request.");
            return;
        }

        using var admitted = perUser.TryAdmit(identity.ExternalId);
        if (admitted is null)
        {
            TooManyConnections(logger, identity.ExternalId);
            context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
            return;
        }

        UserProfile profile;
        try
        {
            profile = await users.UpsertFromClaimsAsync(identity.ExternalId, identity.DisplayName, identity.AvatarUrl, context.RequestAborted);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException)
        {
            ProvisioningFailed(logger, e, identity.ExternalId);
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return;
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
            return;
        }
        using (socket)
        {
            var user = new ConnectedUser(profile.Id, profile.ExternalId, profile.DisplayName, profile.AvatarUrl);
            await sessions.RunAsync(socket, user, catchup, lifetime.Stopping, context.RequestAborted, identity.ExpiresAt);
        }
    }

    [LoggerMessage(1, LogLevel.Error, "Could not provision the profile of {ExternalId}; handshake refused with 503")]
    private static partial void ProvisioningFailed(ILogger logger, Exception exception, string externalId);

    [LoggerMessage(2, LogLevel.Warning, "Handshake from origin {Origin} refused with 403: not in Chat:Security:AllowedOrigins")]
    private static partial void OriginRefused(ILogger logger, string origin);

    [LoggerMessage(3, LogLevel.Warning, "Handshake of {ExternalId} refused with 429: Chat:Limits:MaxConnectionsPerUser reached")]
    private static partial void TooManyConnections(ILogger logger, string externalId);

    [LoggerMessage(4, LogLevel.Warning, "Upgrade refused with 503: {Reason}")]
    private static partial void UpgradeRefused(ILogger logger, string reason);
}

public static class ChatWebSocketEndpoint
{
    /// <summary>Maps the chat socket at <paramref name="path"/>, with WebSocket keep-alive pings from <c>Chat:Limits</c>.</summary>
    public static IApplicationBuilder MapChatWebSocket(this WebApplication app, string path)
    {
        var limits = app.Services.GetRequiredService<IOptions<ChatLimitsOptions>>().Value;
        return app.Map(path, ws => ws
            .UseWebSockets(new WebSocketOptions
            {
                KeepAliveInterval = limits.KeepAliveInterval,
                KeepAliveTimeout = limits.KeepAliveTimeout,
            })
            .UseMiddleware<ChatWebSocketMiddleware>());
    }
}
