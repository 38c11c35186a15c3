using System.Net.WebSockets;
using Chat.Core.Auth;
using Chat.Core.Connections;
using Chat.Core.Options;
using Chat.Core.Sessions;
using Chat.Data.Users;
using Chat.Gateway.Hosting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.WebSockets;

/// <summary>
/// The WebSocket handshake: refuses what should never be upgraded (no valid token: 401; shutting down: 503;
/// not a WebSocket request: 400), provisions the user's profile from the token, then hands the socket to
/// the session runner for its lifetime.
/// </summary>
public sealed partial class ChatWebSocketMiddleware(
    ChatSessionRunner sessions,
    UserRepository users,
    GatewayLifetime lifetime,
    ILogger<ChatWebSocketMiddleware> logger) : IMiddleware
{
    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (lifetime.IsStopping)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return;
        }

        // Authentication comes before anything else is revealed: no upgrade without a valid token.
        if (context.User.Identity?.IsAuthenticated != true || ChatTokens.Identity(context.User) is not { } identity)
        {
            await context.ChallengeAsync();
            return;
        }

        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("This endpoint speaks WebSocket only: send an upgrade request.");
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

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var user = new ConnectedUser(profile.Id, profile.ExternalId, profile.DisplayName, profile.AvatarUrl);
        await sessions.RunAsync(socket, user, catchup, lifetime.Stopping, context.RequestAborted);
    }

    [LoggerMessage(1, LogLevel.Error, "Could not provision the profile of {ExternalId}; handshake refused with 503")]
    private static partial void ProvisioningFailed(ILogger logger, Exception exception, string externalId);
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
