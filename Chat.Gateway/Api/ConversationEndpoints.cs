using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Chat.Core.Conversations;
using Chat.Core.Options;
using Chat.Core.Protocol;
using Chat.Data.Conversations;
using Chat.Data.Messages;
using Chat.Gateway.Hosting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.Api;

/// <summary>
/// <c>/api/conversations</c> and <c>/api/users/me</c> (docs/http-api.md). A conversation the caller is not an
/// active member of answers 404 exactly as one that does not exist.
/// </summary>
public static class ConversationEndpoints
{
    public const int MaxMembersPerRequest = 100;
    public const int MaxTitleLength = 200;
    public const int MaxPageSize = 100;
    public const int DefaultPageSize = 50;

    public static IEndpointRouteBuilder MapChatApi(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/api")
            .RequireAuthorization()
            .AddEndpointFilter<ApiCaller>();

        api.MapMethods("/users/me", ReadMethods.GetOrHead, (HttpContext context) =>
        {
            var caller = ApiCaller.Of(context);
            return TypedResults.Ok(new UserResponse(caller.UserId, caller.ExternalId, caller.DisplayName, caller.AvatarUrl));
        });

        var conversations = api.MapGroup("/conversations");
        conversations.MapPost("", CreateAsync);
        conversations.MapMethods("", ReadMethods.GetOrHead, ListAsync);
        conversations.MapMethods("/{id}", ReadMethods.GetOrHead, GetAsync);
        conversations.MapMethods("/{id}/messages", ReadMethods.GetOrHead, HistoryAsync);
        conversations.MapPost("/{id}/members", AddMemberAsync);
        conversations.MapDelete("/{id}/members/{externalId}", RemoveMemberAsync);
        return endpoints;
    }

    private static async Task<IResult> CreateAsync(HttpContext context, ConversationService service, IOptions<ChatLimitsOptions> limits, CancellationToken cancellationToken)
    {
        var caller = ApiCaller.Of(context);
        var validation = new ApiValidation();
        if (await validation.ReadObjectAsync(context.Request) is not { } body)
        {
            return validation.Problem();
        }
        // A blank title is no title: clients send "" for an untitled conversation, and a list of "" titles shows nothing.
        var title = validation.OptionalString(body, "title", MaxTitleLength) is { } given && !string.IsNullOrWhiteSpace(given) ? given : null;
        // Every member's conversation list shows it on one line.
        if (title is not null && LabelText.Problem(title) is { } notLabel)
        {
            validation.Add("title", $"title {notLabel}.");
        }
        var isGroup = validation.OptionalBool(body, "isGroup");
        var memberIds = validation.RequiredExternalIds(body, "memberExternalIds", MaxMembersPerRequest);
        var idempotencyKey = IdempotencyKey(context.Request, validation);
        if (!validation.IsValid || memberIds is null)
        {
            return validation.Problem();
        }
        var others = memberIds.Where(id => id != caller.ExternalId).Distinct().Count();
        if (others == 0)
        {
            validation.Add("memberExternalIds", "memberExternalIds must name at least one member besides the caller.");
        }
        else if (isGroup == false && others != 1)
        {
            validation.Add("memberExternalIds", "memberExternalIds must name exactly one member besides the caller for a direct conversation (isGroup false).");
        }
        else if (others + 1 > limits.Value.MaxConversationMembers)
        {
            validation.Add("memberExternalIds", $"memberExternalIds names too many members: a conversation has at most {limits.Value.MaxConversationMembers} members, the caller included.");
        }
        if (!validation.IsValid)
        {
            return validation.Problem();
        }

        var (conversation, outcome) = await service.CreateAsync(caller, title, isGroup ?? others > 1, memberIds, idempotencyKey, cancellationToken);
        return outcome switch
        {
            CreateOutcome.Created => TypedResults.Created($"/api/conversations/{conversation!.ConversationId}", ConversationResponse.Of(conversation)),
            CreateOutcome.Existing => TypedResults.Ok(ConversationResponse.Of(conversation!)),
            CreateOutcome.KeyUsedForAnotherRequest => TypedResults.Problem(
                statusCode: StatusCodes.Status422UnprocessableEntity, title: "Unprocessable Content",
                detail: $"The {IdempotencyKeyHeader} was used for another request (other members or another title); a key names one creation: use a new key for a new request."),
            _ => TypedResults.Problem(
                statusCode: StatusCodes.Status409Conflict, title: "Conflict",
                detail: $"The {IdempotencyKeyHeader} created a group that the caller has left since."),
        };
    }

    private const string IdempotencyKeyHeader = "Idempotency-Key";

    private const int MaxIdempotencyKeyLength = 64;

    /// <summary>The request's <c>Idempotency-Key</c>: 1 to 64 visible ASCII characters (a UUID fits), given once; null when absent.</summary>
    private static string? IdempotencyKey(HttpRequest request, ApiValidation validation)
    {
        if (validation.Single(request.Headers[IdempotencyKeyHeader], IdempotencyKeyHeader) is not { } key)
        {
            return null;
        }
        if (key.Length is 0 or > MaxIdempotencyKeyLength || key.Any(c => c is < '!' or > '~'))
        {
            validation.Add(IdempotencyKeyHeader, $"{IdempotencyKeyHeader} must be 1 to {MaxIdempotencyKeyLength} visible ASCII characters (no spaces).");
            return null;
        }
        return key;
    }

    private static async Task<IResult> ListAsync(HttpContext context, ConversationService service, CancellationToken cancellationToken)
    {
        // Read from the query itself, not bound: a parameter given twice is an error, not its values joined by a comma.
        var (cursor, limit) = (context.Request.Query["cursor"], context.Request.Query["limit"]);
        var validation = new ApiValidation();
        var pageSize = (int)(validation.OptionalInteger(limit, "limit", 1, MaxPageSize) ?? DefaultPageSize);
        (DateTime, long)? after = null;
        if (validation.Single(cursor, "cursor") is { Length: > 0 } given)
        {
            after = Cursor.Decode(given);
            if (after is null)
            {
                validation.Add("cursor", "cursor is not a cursor this API returned.");
            }
        }
        if (!validation.IsValid)
        {
            return validation.Problem();
        }

        var page = await service.ListAsync(ApiCaller.Of(context), after, pageSize, cancellationToken);
        var last = page.Conversations.Count > 0 ? page.Conversations[^1] : null;
        return TypedResults.Ok(new ConversationPageResponse(
            [.. page.Conversations.Select(c => ConversationResponse.Of(c))],
            page.HasMore && last is not null ? Cursor.Encode(last.ActivityAt, last.ConversationId) : null));
    }

    private static async Task<IResult> GetAsync(HttpContext context, ConversationService service, string id, CancellationToken cancellationToken)
    {
        var validation = new ApiValidation();
        var conversationId = validation.Id(id, "id");
        if (!validation.IsValid)
        {
            return validation.Problem();
        }
        if (await service.GetAsync(ApiCaller.Of(context), conversationId, cancellationToken) is not { } conversation)
        {
            return ConversationNotFound(conversationId);
        }
        return TypedResults.Ok(ConversationResponse.Of(conversation, m => new MemberDetailResponse(
            m.UserId, m.ExternalId, m.DisplayName, m.AvatarUrl, FrameWriter.PresenceName(service.PresenceOf(m.UserId)), m.LastSeenAt)));
    }

    private static async Task<IResult> HistoryAsync(
        HttpContext context, MessageHistoryRepository history, string id, CancellationToken cancellationToken)
    {
        var query = context.Request.Query;
        var (afterSeq, beforeSeq, limit) = (query["afterSeq"], query["beforeSeq"], query["limit"]);
        var validation = new ApiValidation();
        var conversationId = validation.Id(id, "id");
        var after = validation.OptionalInteger(afterSeq, "afterSeq", 0, long.MaxValue);
        var before = validation.OptionalInteger(beforeSeq, "beforeSeq", 1, long.MaxValue);
        var pageSize = (int)(validation.OptionalInteger(limit, "limit", 1, MaxPageSize) ?? DefaultPageSize);
        if (!validation.IsValid)
        {
            return validation.Problem();
        }
        var page = await history.ReadAsync(conversationId, ApiCaller.Of(context).UserId, after, before, pageSize, cancellationToken);
        return page is null
            ? ConversationNotFound(conversationId)
            : TypedResults.Ok(new MessagePageResponse([.. page.Messages.Select(MessageResponse.Of)], page.HasMore, page.LastSeq, page.LastChangeSeq));
    }

    private static async Task<IResult> AddMemberAsync(HttpContext context, ConversationService service, string id, CancellationToken cancellationToken)
    {
        var validation = new ApiValidation();
        var conversationId = validation.Id(id, "id");
        if (await validation.ReadObjectAsync(context.Request) is not { } body)
        {
            return validation.Problem();
        }
        var externalId = validation.RequiredExternalId(body, "externalId");
        if (!validation.IsValid || externalId is null)
        {
            return validation.Problem();
        }

        var (outcome, member) = await service.AddMemberAsync(ApiCaller.Of(context), conversationId, externalId, cancellationToken);
        return outcome switch
        {
            MembershipOutcome.Changed => TypedResults.Created($"/api/conversations/{conversationId}/members/{Uri.EscapeDataString(externalId)}", MemberResponse.Of(member!)),
            MembershipOutcome.Unchanged => TypedResults.Ok(MemberResponse.Of(member!)),
            MembershipOutcome.NotGroup => TypedResults.Problem(
                statusCode: StatusCodes.Status409Conflict, title: "Conflict",
                detail: $"Conversation {conversationId} is a direct conversation: its members are the two people it was made for, and no one is added to it."),
            MembershipOutcome.Full => TypedResults.Problem(
                statusCode: StatusCodes.Status409Conflict, title: "Conflict",
                detail: $"Conversation {conversationId} has as many members as a conversation may have (Chat:Limits:MaxConversationMembers)."),
            _ => ConversationNotFound(conversationId),
        };
    }

    private static async Task<IResult> RemoveMemberAsync(HttpContext context, ConversationService service, string id, string externalId, CancellationToken cancellationToken)
    {
        var validation = new ApiValidation();
        var conversationId = validation.Id(id, "id");
        if (DecodedLastSegment(context, externalId) is { } decoded)
        {
            externalId = validation.ExternalId(decoded, "externalId");
        }
        else
        {
            validation.Add("externalId", "externalId must be valid text: its percent-escapes must spell UTF-8.");
        }
        if (!validation.IsValid)
        {
            return validation.Problem();
        }
        return await service.RemoveMemberAsync(ApiCaller.Of(context), conversationId, externalId, cancellationToken) switch
        {
            MembershipOutcome.Changed => TypedResults.NoContent(),
            MembershipOutcome.Unchanged => TypedResults.Problem(
                statusCode: StatusCodes.Status404NotFound, title: "Not Found",
                detail: $"{externalId} is not a member of conversation {conversationId}."),
            MembershipOutcome.NotGroup => TypedResults.Problem(
                statusCode: StatusCodes.Status403Forbidden, title: "Forbidden",
                detail: "Nobody removes the other person of a direct conversation; each may leave it."),
            _ => ConversationNotFound(conversationId),
        };
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// The last path segment decoded in full; null when its escapes are not UTF-8. ASP.NET Core decodes every
    /// escape in a route value except <c>%2F</c>, which it leaves as it is, so an external id with a slash (identity
    /// providers use URLs: <c>https://idp.example/users/7</c>), sent escaped as it must be, would never match. It
    /// also leaves escapes that are not UTF-8 (<c>%FF</c>) as they are, which would name the user whose id is the
    /// text "%FF" (<c>%25FF</c>) instead of answering that the segment is not text. The raw target gives the
    /// segment as sent; it is used when it agrees with the route value, which it always does unless a proxy
    /// rewrote the path.
    /// </summary>
    private static string? DecodedLastSegment(HttpContext context, string routeValue)
    {
        if (context.Features.Get<IHttpRequestFeature>()?.RawTarget is not { } raw)
        {
            return routeValue;
        }
        // Routing takes .../members/bob/ for .../members/bob: the segment is the one before a trailing slash.
        var path = raw.Split('?', 2)[0].TrimEnd('/');
        if (PercentDecode(path[(path.LastIndexOf('/') + 1)..]) is not { } decoded)
        {
            return null;
        }
        return string.Equals(decoded.Replace("/", "%2F", StringComparison.Ordinal), routeValue, StringComparison.OrdinalIgnoreCase) ? decoded : routeValue;
    }

    /// <summary>Every <c>%XX</c> as the byte it names, the whole read as strict UTF-8; null when it is not.</summary>
    private static string? PercentDecode(string segment)
    {
        var bytes = new List<byte>(segment.Length);
        for (var i = 0; i < segment.Length;)
        {
            if (segment[i] == '%' && i + 2 < segment.Length
                && byte.TryParse(segment.AsSpan(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var escaped))
            {
                bytes.Add(escaped);
                i += 3;
                continue;
            }
            // A run up to the next '%' (one that starts no escape stands for itself).
            var next = segment.IndexOf('%', i + 1);
            var run = segment.AsSpan(i, (next < 0 ? segment.Length : next) - i);
            bytes.AddRange(Encoding.UTF8.GetBytes(run.ToArray()));
            i += run.Length;
        }
        try
        {
            return StrictUtf8.GetString([.. bytes]);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }

    private static IResult ConversationNotFound(long conversationId) => TypedResults.Problem(
        statusCode: StatusCodes.Status404NotFound, title: "Not Found", detail: $"Conversation {conversationId} was not found.");

    /// <summary>The list's position, opaque to clients: the last item's activity time (in ticks) and id.</summary>
    internal static class Cursor
    {
        public static string Encode(DateTime activityAt, long id) =>
            Base64Url.EncodeToString(Encoding.ASCII.GetBytes(
                string.Create(CultureInfo.InvariantCulture, $"{activityAt.ToUniversalTime().Ticks}:{id}")));

        public static (DateTime, long)? Decode(string cursor)
        {
            try
            {
                var parts = Encoding.ASCII.GetString(Base64Url.DecodeFromChars(cursor)).Split(':');
                if (parts.Length == 2
                    && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
                    && ticks is >= 0 and <= 3155378975999999999 // DateTime.MaxValue.Ticks
                    && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
                {
                    return (new DateTime(ticks, DateTimeKind.Utc), id);
                }
            }
            catch (FormatException)
            {
            }
            return null;
        }
    }
}
