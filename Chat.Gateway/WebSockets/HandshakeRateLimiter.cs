using Chat.Core.Limits;
using Chat.Core.Options;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.WebSockets;

/// <summary>
/// WebSocket handshakes per user (<c>Chat:Limits:HandshakesPerSecond</c>, <c>Chat:Limits:HandshakeBurst</c>): a
/// connection that opens and closes again at once is within every frame limit, yet each one stores the profile,
/// reads the catch-up and tells every contact "online" and then "offline". One client looping over that reached
/// 45 a second over loopback.
/// </summary>
public sealed class HandshakeRateLimiter(IOptions<ChatLimitsOptions> limits, TimeProvider time)
    : PerUserRateLimiter(limits.Value.HandshakesPerSecond, limits.Value.HandshakeBurst, time);
