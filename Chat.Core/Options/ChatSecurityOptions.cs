namespace Chat.Core.Options;

/// <summary><c>Chat:Security</c>: which web pages may open a socket.</summary>
public sealed class ChatSecurityOptions
{
    public const string Section = "Chat:Security";

    /// <summary>Any origin: turns the check off.</summary>
    public const string AnyOrigin = "*";

    /// <summary>
    /// Origins (<c>scheme://host[:port]</c>) whose pages may open the chat socket. A browser always sends
    /// <c>Origin</c> on a WebSocket handshake, so an unlisted one is a page of another site trying to use the
    /// visitor's token (cross-site WebSocket hijacking) and gets 403. Requests without <c>Origin</c> come from
    /// programs, not pages, and pass. Empty (the default) means no browser page at all; <c>*</c> means any.
    /// </summary>
    public string[] AllowedOrigins { get; set; } = [];

    /// <summary>Returns why these options are unusable, or null when they are fine.</summary>
    public string? Validate()
    {
        foreach (var origin in AllowedOrigins)
        {
            if (origin == AnyOrigin)
            {
                continue;
            }
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri)
                || uri.Scheme is not ("http" or "https")
                || uri.PathAndQuery != "/" || origin.EndsWith('/')
                || !string.IsNullOrEmpty(uri.UserInfo) || !string.IsNullOrEmpty(uri.Fragment))
            {
                return $"Chat:Security:AllowedOrigins: \"{origin}\" is not an origin: write scheme://host or scheme://host:port (no path, no trailing slash), or * for any.";
            }
            // Compared as text with the header, and a browser leaves the scheme's own port out of it.
            if (uri.IsDefaultPort && origin.EndsWith($":{uri.Port}", StringComparison.Ordinal))
            {
                return $"Chat:Security:AllowedOrigins: \"{origin}\" names the default port of {uri.Scheme}, which browsers leave out of Origin: write {uri.Scheme}://{uri.Authority}.";
            }
        }
        return null;
    }

    /// <summary>Whether a handshake with this <c>Origin</c> header (null when absent) may be upgraded.</summary>
    public bool Allows(string? origin) =>
        string.IsNullOrEmpty(origin)
        || AllowedOrigins.Any(allowed => allowed == AnyOrigin || string.Equals(allowed, origin, StringComparison.OrdinalIgnoreCase));
}
