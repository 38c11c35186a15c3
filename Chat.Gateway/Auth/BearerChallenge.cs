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
}
