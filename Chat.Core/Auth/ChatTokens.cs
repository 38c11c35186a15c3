using System.Security.Claims;
using System.Text;
using Chat.Core.Options;
using Chat.Core.Protocol;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Chat.Core.Auth;

/// <summary>Access tokens: HS256 JWTs with <c>sub</c> (the external user id), <c>name</c>, <c>picture</c> and a required <c>exp</c>.</summary>
public static class ChatTokens
{
    public const string SubjectClaim = "sub";
    public const string NameClaim = "name";
    public const string PictureClaim = "picture";
    public const string ExpiryClaim = "exp";

    /// <summary>Longest <c>sub</c> accepted: an external id (<see cref="ExternalIds"/>), as the HTTP API names members by it.</summary>
    public const int MaxExternalIdLength = ExternalIds.MaxLength;

    /// <summary>Longest <c>name</c> accepted: it travels in every message frame of its user.</summary>
    public const int MaxNameLength = 200;

    /// <summary>Longest <c>picture</c> accepted, as long as a message's <c>mediaUrl</c> may be.</summary>
    public const int MaxPictureLength = LinkUrls.MaxLength;

    public static TokenValidationParameters ValidationParameters(ChatAuthOptions options) => new()
    {
        IssuerSigningKey = SigningKey(options),
        ValidateIssuerSigningKey = true,
        // Only HS256: a token that names another algorithm, "none" included, is refused.
        ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
        RequireSignedTokens = true,
        RequireExpirationTime = true,
        ValidateLifetime = true,
        ClockSkew = options.ClockSkew,
        ValidateIssuer = !string.IsNullOrEmpty(options.Issuer),
        ValidIssuer = options.Issuer,
        ValidateAudience = !string.IsNullOrEmpty(options.Audience),
        ValidAudience = options.Audience,
        NameClaimType = NameClaim,
    };

    public static string Issue(ChatAuthOptions options, string externalId, string? name, string? picture, TimeSpan lifetime, DateTime? now = null)
    {
        var issuedAt = now ?? DateTime.UtcNow;
        var claims = new Dictionary<string, object> { [SubjectClaim] = externalId };
        if (!string.IsNullOrEmpty(name))
        {
            claims[NameClaim] = name;
        }
        if (!string.IsNullOrEmpty(picture))
        {
            claims[PictureClaim] = picture;
        }
        var descriptor = new SecurityTokenDescriptor
        {
            Claims = claims,
            IssuedAt = issuedAt,
            NotBefore = issuedAt,
            Expires = issuedAt + lifetime,
            Issuer = string.IsNullOrEmpty(options.Issuer) ? null : options.Issuer,
            Audience = string.IsNullOrEmpty(options.Audience) ? null : options.Audience,
            SigningCredentials = new SigningCredentials(SigningKey(options), SecurityAlgorithms.HmacSha256),
        };
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);
    }

    /// <summary>
    /// The user a validated principal stands for: the external id, and the name and avatar when the token has them;
    /// null when the token names nobody, or when one of the three is refused, with <paramref name="refusal"/> saying
    /// why in a sentence fit for a <c>WWW-Authenticate</c> error_description.
    /// </summary>
    public static (string ExternalId, string? DisplayName, string? AvatarUrl)? Identity(ClaimsPrincipal principal, out string? refusal)
    {
        var externalId = principal.FindFirstValue(SubjectClaim);
        var name = principal.FindFirstValue(NameClaim);
        var picture = principal.FindFirstValue(PictureClaim);
        // The sub follows the HTTP API's rule for external ids, so that the API can name every user a token makes.
        // PostgreSQL refuses a NUL in text: the profile upsert would fail on every connection for as long as the
        // token lives, as a 503 the client retries. The token library already refuses a lone surrogate in a claim.
        // The lengths keep a profile (and every message frame that names its user) within reason.
        refusal = externalId is null ? "The token has no sub claim."
            : ExternalIds.Problem(externalId) is { } problem ? $"The token's {SubjectClaim} {problem}."
            : TextProblem(NameClaim, name, MaxNameLength) ?? TextProblem(PictureClaim, picture, MaxPictureLength) ?? NameProblem(name) ?? PictureProblem(picture);
        if (refusal is not null)
        {
            return null;
        }
        // A blank claim is no claim: it keeps what is stored, rather than giving every later frame an empty name or avatar URL.
        return (externalId!, string.IsNullOrWhiteSpace(name) ? null : name, string.IsNullOrWhiteSpace(picture) ? null : picture);
    }

    private static string? TextProblem(string claim, string? value, int maxLength) =>
        value is null ? null
        : !FrameReader.IsValidText(value) ? $"The token's {claim} {FrameReader.ValidTextRule}."
        : value.Length > maxLength ? $"The token's {claim} must be at most {maxLength} characters."
        : null;

    // The name reaches every member's client as senderName, on one line beside the message: the rule of a label. A
    // blank one is no claim (it keeps the stored name), so it is not held to the rule.
    private static string? NameProblem(string? name) =>
        string.IsNullOrWhiteSpace(name) ? null
        : LabelText.Problem(name) is { } problem ? $"The token's {NameClaim} {problem}."
        : null;

    // The avatar reaches every member's client as senderAvatarUrl, to be loaded or linked: the same rule as a
    // message's mediaUrl. A blank one is no claim (it keeps the stored avatar), so it is not held to the rule.
    private static string? PictureProblem(string? picture) =>
        string.IsNullOrWhiteSpace(picture) ? null
        : LinkUrls.Problem(picture) is { } problem ? $"The token's {PictureClaim} {problem}."
        : null;

    /// <summary>When a validated token expires (its <c>exp</c>), or null when it carries none.</summary>
    public static DateTimeOffset? ExpiresAt(ClaimsPrincipal principal) =>
        long.TryParse(principal.FindFirstValue(ExpiryClaim), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(seconds, 0, DateTimeOffset.MaxValue.ToUnixTimeSeconds()))
            : null;

    private static SymmetricSecurityKey SigningKey(ChatAuthOptions options) =>
        new(Encoding.UTF8.GetBytes(options.SigningKey ?? throw new InvalidOperationException("Chat:Auth:SigningKey is not set.")));
}
