using Chat.Core.Protocol;

namespace Chat.Core.Auth;

/// <summary>
/// What an external id may be. A user's external id is their token's <c>sub</c>, and the HTTP API names members by
/// it (in request bodies and in paths), so the token and the API check it with this one rule: a profile that a
/// token creates can always be named by the API, and an id that the API refuses never gets a profile.
/// </summary>
public static class ExternalIds
{
    /// <summary>Longest external id, in UTF-16 code units.</summary>
    public const int MaxLength = 256;

    /// <summary>
    /// Why <paramref name="value"/> is not an external id, as the end of a sentence that names it ("must not be
    /// blank"); null when it is one.
    /// </summary>
    /// <remarks>
    /// White space at either end is a copy-and-paste mistake, not a name: " alice" would be a second, empty
    /// profile beside "alice", which clients trim without noticing. An id is shown as a name until its user first
    /// connects, and in member lists: it follows the rule of one (<see cref="LabelText"/>). A NUL or an unpaired surrogate cannot be
    /// stored by PostgreSQL. "." and ".." cannot be a path segment: HTTP servers and proxies resolve them away
    /// (<c>/members/..</c> is <c>/</c>), so such a member could never be named in a path to be removed.
    /// </remarks>
    public static string? Problem(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return "must not be blank";
        }
        if (value.Length > MaxLength)
        {
            return $"must be at most {MaxLength} characters";
        }
        if (!FrameReader.IsValidText(value))
        {
            return FrameReader.ValidTextRule;
        }
        if (char.IsWhiteSpace(value[0]) || char.IsWhiteSpace(value[^1]))
        {
            return "must not start or end with white space";
        }
        if (LabelText.Problem(value) is { } notLabel)
        {
            return notLabel;
        }
        if (value is "." or "..")
        {
            return "must not be . or .. (no path segment can name them)";
        }
        return null;
    }
}
