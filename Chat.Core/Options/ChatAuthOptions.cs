using System.Text;

namespace Chat.Core.Options;

/// <summary><c>Chat:Auth</c>: how access tokens are verified.</summary>
public sealed class ChatAuthOptions
{
    public const string Section = "Chat:Auth";

    /// <summary>
    /// The documented key that <c>./run</c> and the tests use. Accepted only in the Development environment;
    /// anywhere else the gateway refuses to start with it.
    /// </summary>
    public const string DevelopmentSigningKey = "realtimechat-development-signing-key-do-not-use-in-production";

    public const int MinimumKeyBytes = 32;

    /// <summary>HS256 key, at least 32 bytes of UTF-8.</summary>
    public string? SigningKey { get; set; }

    public string? Issuer { get; set; }

    public string? Audience { get; set; }

    /// <summary>
    /// Tolerance for clocks that disagree, on <c>nbf</c>, and on <c>exp</c> for HTTP requests: a WebSocket handshake
    /// needs a token not yet past <c>exp</c> by this server's clock (HandshakeAuthenticator).
    /// </summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Returns why these options are unusable, or null when they are fine.</summary>
    public string? Validate(bool isDevelopment) => Failures(isDevelopment).FirstOrDefault();

    /// <summary>Every reason these options are unusable: one about the key at most, and one about the skew.</summary>
    public IEnumerable<string> Failures(bool isDevelopment)
    {
        if (KeyFailure(isDevelopment) is { } key)
        {
            yield return key;
        }
        if (ClockSkew < TimeSpan.Zero || ClockSkew > TimeSpan.FromMinutes(5))
        {
            yield return "Chat:Auth:ClockSkew must be between 00:00:00 and 00:05:00 (hh:mm:ss; a bare number is read as days).";
        }
    }

    private string? KeyFailure(bool isDevelopment)
    {
        if (string.IsNullOrEmpty(SigningKey))
        {
            return "Chat:Auth:SigningKey is not set: give the gateway an HS256 key of at least 32 bytes.";
        }
        if (Encoding.UTF8.GetByteCount(SigningKey) < MinimumKeyBytes)
        {
            return $"Chat:Auth:SigningKey is too short: HS256 needs at least {MinimumKeyBytes} bytes.";
        }
        if (!isDevelopment && SigningKey == DevelopmentSigningKey)
        {
            return "Chat:Auth:SigningKey is the documented development key, which is refused outside the Development environment.";
        }
        return null;
    }
}
