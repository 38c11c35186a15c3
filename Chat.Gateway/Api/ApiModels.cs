using System.Text.Json;
using System.Text.Json.Serialization;
using Chat.Core.Protocol;
using Chat.Data.Conversations;
using Chat.Data.Messages;
using Chat.Data.Users;

namespace Chat.Gateway.Api;

// The HTTP API's response bodies (docs/http-api.md). Field names are camelCase through the web JSON defaults.

public sealed record UserResponse(long UserId, string ExternalId, string DisplayName, string? AvatarUrl);

public sealed record MemberResponse(long UserId, string ExternalId, string DisplayName, string? AvatarUrl)
{
    public static MemberResponse Of(ConversationMember m) => new(m.UserId, m.ExternalId, m.DisplayName, m.AvatarUrl);

    public static MemberResponse Of(UserProfile p) => new(p.Id, p.ExternalId, p.DisplayName, p.AvatarUrl);
}

/// <summary>A member in the conversation detail: with their presence now and when they were last connected.</summary>
public sealed record MemberDetailResponse(long UserId, string ExternalId, string DisplayName, string? AvatarUrl, string PresenceStatus, DateTime? LastSeenAt);

/// <typeparam name="TMember">The list's <see cref="MemberResponse"/>, or the detail's <see cref="MemberDetailResponse"/>.</typeparam>
public sealed record ConversationResponse<TMember>(
    long ConversationId,
    string? Title,
    bool IsGroup,
    DateTime CreatedAt,
    long LastSeq,
    DateTime? LastMessageAt,
    string? LastMessagePreview,
    long? LastMessageSenderId,
    string? LastMessageSenderName,
    int UnreadCount,
    int MemberCount,
    IReadOnlyList<TMember> Members);

public static class ConversationResponse
{
    public static ConversationResponse<MemberResponse> Of(ConversationSummary c) => Of(c, MemberResponse.Of);

    public static ConversationResponse<TMember> Of<TMember>(ConversationSummary c, Func<ConversationMember, TMember> member) => new(
        c.ConversationId, c.Title, c.IsGroup, c.CreatedAt, c.LastSeq, c.LastMessageAt, c.LastMessagePreview, c.LastMessageSenderId, c.LastMessageSenderName, c.UnreadCount,
        c.MemberCount, [.. c.Members.Select(member)]);
}

public sealed record ConversationPageResponse(IReadOnlyList<ConversationResponse<MemberResponse>> Items, string? NextCursor);

public sealed record MessageResponse(
    long ConversationId,
    long MessageId,
    long Seq,
    long SenderId,
    string SenderName,
    string? SenderAvatarUrl,
    string? Content,
    string MessageType,
    long? ReplyToMessageId,
    string? MediaUrl,
    DateTime Timestamp,
    string ClientMessageId,
    bool IsEdited,
    DateTime? EditedAt,
    bool IsDeleted,
    long? ChangeSeq)
{
    public static MessageResponse Of(HistoryMessage m) => new(
        m.ConversationId, m.MessageId, m.Seq, m.SenderId, m.SenderName, m.SenderAvatarUrl, m.Content, m.MessageType,
        m.ReplyToMessageId, m.MediaUrl, m.CreatedAt, m.ClientMessageId, m.EditedAt is not null, m.EditedAt, m.IsDeleted, m.ChangeSeq);
}

/// <param name="LastSeq">The conversation's last seq when the page was read.</param>
/// <param name="LastChangeSeq">The conversation's latest change when the page was read: the items show every change up to it.</param>
public sealed record MessagePageResponse(IReadOnlyList<MessageResponse> Items, bool HasMore, long LastSeq, long LastChangeSeq);

/// <summary>Times as on the WebSocket: ISO-8601 UTC with milliseconds and a Z.</summary>
internal sealed class UtcTimestampConverter : JsonConverter<DateTime>
{
    public override DateTime Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.GetDateTime().ToUniversalTime();

    public override void Write(Utf8JsonWriter writer, DateTime value, JsonSerializerOptions options) =>
        writer.WriteStringValue(FrameWriter.FormatTime(value));
}
