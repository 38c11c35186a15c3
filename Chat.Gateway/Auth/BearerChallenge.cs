using Microsoft.IdentityModel.Tokens;

namespace Chat.Gateway.Auth;

/// <summary>
/// The <c>WWW-Authenticate</c> values of a refused token (RFC 6750 §3), for the refusals the gateway makes itself;
/// the JWT bearer handler writes its own, with a description of what it found wrong.
/// </summary>
public static class BearerChallenge
{
    /// <summary>No token was sent.</summary>
    public const string NoToken = "Bearer";

    /// <summary>A token was sent and refused; <paramref name="description"/> says why, when the gateway knows.</summary>
    /// <remarks>
    /// The descriptions are the gateway's own sentences, never text from the token: RFC 6750 allows no quote or
    /// backslash in one, and a client prints it to its user.
    /// </remarks>
    public static string InvalidToken(string? description = null) => description is null
        ? "Bearer error=\"invalid_token\""
        : $"Bearer error=\"invalid_token\", error_description=\"{description}\"";

    /// <summary>
    /// What the token library found wrong with a token, in the gateway's own words (the library's messages quote
    /// the token); null when it is none of these.
    /// </summary>
    /// <remarks>
    /// Order matters: some of these derive from others. A token of another algorithm (HS384, RS256, "none") fails
    /// as a bad signature, since no key of the accepted algorithm matches it; its header names the algorithm.
    /// </remarks>
    public static string? Describe(Exception? failure, string? token) => failure switch
    {
        SecurityTokenInvalidSignatureException when AlgorithmOf(token) is { } algorithm && algorithm != SecurityAlgorithms.HmacSha256
            => "The token's signing algorithm is not accepted.",
        SecurityTokenExpiredException => "The token has expired.",
        SecurityTokenNotYetValidException => "The token is not valid yet (nbf).",
        SecurityTokenNoExpirationException => "The token has no exp claim.",
        SecurityTokenInvalidLifetimeException => "The token's lifetime is not valid.",
        SecurityTokenInvalidIssuerException => "The token's issuer is not accepted.",
        SecurityTokenInvalidAudienceException => "The token's audience is not accepted.",
        SecurityTokenInvalidAlgorithmException => "The token's signing algorithm is not accepted.",
        SecurityTokenInvalidSignatureException => "The token's signature is not valid.",
        SecurityTokenMalformedException => "The token is malformed.",
        _ => null,
    };

    /// <summary>The <c>alg</c> of a token's header, read without validating anything; null when it has none.</summary>
    private static string? AlgorithmOf(string? token)
    {
        try
        {
            return token is null ? null : new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(token).Alg;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}
