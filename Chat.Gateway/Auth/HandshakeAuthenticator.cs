using System.Security.Claims;
using Chat.Core.Auth;
using Chat.Core.Options;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Chat.Gateway.Auth;

/// <summary>Who a WebSocket handshake's token names, and until when.</summary>
public sealed record HandshakeIdentity(string ExternalId, string? DisplayName, string? AvatarUrl, DateTimeOffset? ExpiresAt);

/// <summary>
/// Validates the access token of a WebSocket handshake, with the same rules as the HTTP API's bearer
/// authentication (<see cref="ChatTokens.ValidationParameters"/>), and keeps only what the session needs.
/// </summary>
/// <remarks>
/// The socket is served from inside its handshake request for as long as it is open. Through the authentication
/// middleware, that request would keep the parsed token, its claims and principal and the handler's cached result
/// alive for the socket's whole life: about 3.5 KB per connection, a sixth of an idle connection's heap.
/// Validating here leaves nothing behind but <see cref="HandshakeIdentity"/>.
/// </remarks>
public sealed class HandshakeAuthenticator(IOptions<ChatAuthOptions> options, TimeProvider time)
{
    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly TokenValidationParameters _parameters = ChatTokens.ValidationParameters(options.Value);

    /// <summary>
    /// The token from the <c>Authorization: Bearer</c> header or, for browsers that cannot set headers on a
    /// WebSocket, the <c>access_token</c> query parameter; null when there is none.
    /// </summary>
    public static string? TokenOf(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return authorization["Bearer ".Length..].Trim() is { Length: > 0 } bearer ? bearer : null;
        }
        if (authorization.Length == 0 && request.Query.TryGetValue(AuthenticationExtensions.AccessTokenQueryParameter, out var query))
        {
            return query.ToString() is { Length: > 0 } token ? token : null;
        }
        return null;
    }

    /// <summary>
    /// The identity of a valid token; for a missing, malformed, badly signed, unsigned or expired one, or one whose
    /// claims are refused, no identity and the <c>WWW-Authenticate</c> value to answer with. A token past its
    /// <c>exp</c> by this server's clock is refused even within <c>ClockSkew</c>: the connection would be closed for
    /// its expiry at once, so the client is told to get a new token before it opens one.
    /// </summary>
    public async Task<HandshakeAuthentication> AuthenticateAsync(HttpRequest request)
    {
        if (TokenOf(request) is not { } token)
        {
            return new(null, BearerChallenge.NoToken);
        }
        var result = await _handler.ValidateTokenAsync(token, _parameters);
        if (!result.IsValid)
        {
            return new(null, BearerChallenge.InvalidToken(BearerChallenge.Describe(result.Exception, token)));
        }
        var principal = new ClaimsPrincipal(result.ClaimsIdentity);
        var expiresAt = ChatTokens.ExpiresAt(principal);
        if (expiresAt <= time.GetUtcNow())
        {
            return new(null, BearerChallenge.InvalidToken("The token has expired."));
        }
        return ChatTokens.Identity(principal, out var refusal) is { } identity
            ? new(new HandshakeIdentity(identity.ExternalId, identity.DisplayName, identity.AvatarUrl, expiresAt), null)
            : new(null, BearerChallenge.InvalidToken(refusal));
    }
}

/// <summary>A handshake's token: who it names, or, when it is refused, the challenge that says so.</summary>
public readonly record struct HandshakeAuthentication(HandshakeIdentity? Identity, string? Challenge);
