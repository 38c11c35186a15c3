namespace Chat.Core.Protocol;

/// <summary>
/// What a URL that the gateway stores and relays to other users may be: a message's <c>mediaUrl</c> and a token's
/// <c>picture</c>, which every member's client receives as <c>senderAvatarUrl</c> and is likely to load or link.
/// </summary>
public static class LinkUrls
{
    /// <summary>Longest URL, in UTF-16 code units.</summary>
    public const int MaxLength = 2048;

    /// <summary>What <see cref="Problem"/> asks, as the end of a sentence that names the value.</summary>
    public static readonly string Rule = $"must be an absolute http or https URL of at most {MaxLength} characters, without spaces, control characters or a user:password@ part";

    /// <summary>
    /// <see cref="Rule"/> when <paramref name="value"/> breaks it, else null. Valid text (no NUL, no unpaired
    /// surrogate) is checked by the caller first, with its own message.
    /// </summary>
    /// <remarks>
    /// Only http and https: a <c>javascript:</c> or <c>data:</c> URL is script or content of the sender's choosing in
    /// every other member's client. <see cref="Uri.TryCreate(string, UriKind, out Uri)"/> trims surrounding white
    /// space and drops tabs and line breaks inside, yet the string as sent is what is stored and relayed, so such
    /// characters are refused rather than passed on. A user:password@ part hides the real host from a reader
    /// (https://bank.example@evil.example).
    /// </remarks>
    public static string? Problem(string value) =>
        value.Length > MaxLength
        || value.Any(c => char.IsWhiteSpace(c) || char.IsControl(c))
        || !Uri.TryCreate(value, UriKind.Absolute, out var uri)
        || uri.Scheme is not ("http" or "https")
        || uri.UserInfo.Length > 0 || HasEmptyUserInfo(value)
            ? Rule
            : null;

    // Uri reports no user information for "https://@host/", which still shows a reader an '@' before the host.
    private static bool HasEmptyUserInfo(string value)
    {
        var start = value.IndexOf("://", StringComparison.Ordinal) + 3;
        var end = value.IndexOfAny(['/', '?', '#'], start);
        return value.AsSpan(start, (end < 0 ? value.Length : end) - start).Contains('@');
    }
}
