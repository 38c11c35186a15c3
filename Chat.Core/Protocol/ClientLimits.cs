using Chat.Core.Options;

namespace Chat.Core.Protocol;

/// <summary>
/// The limits a client must keep to, as <c>welcome</c> tells them: a deployment may change the defaults, and a
/// client that knows them refuses a long message itself instead of losing its connection to a 1009, and paces
/// itself instead of meeting <c>rate_limited</c>.
/// </summary>
public sealed record ClientLimits(int MaxFrameBytes, int MaxContentLength, double FramesPerSecond, int FrameBurst, double TypingPerSecond, int TypingBurst, double PresencePerSecond, int PresenceBurst)
{
    public static ClientLimits Of(ChatLimitsOptions limits) => new(
        limits.MaxFrameBytes, limits.MaxContentLength, limits.MessageRatePerSecond, limits.MessageBurst, limits.TypingRatePerSecond, limits.TypingBurst,
        limits.PresenceRatePerSecond, limits.PresenceBurst);
}
