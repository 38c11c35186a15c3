namespace Chat.Data.Users;

public sealed class UserProfile
{
    public long Id { get; init; }
    public required string ExternalId { get; init; }
    public required string DisplayName { get; init; }
    public string? AvatarUrl { get; init; }
    public DateTime? LastSeenAt { get; init; }
}
