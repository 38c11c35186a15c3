using Chat.Core.Limits;
using Chat.Core.Options;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.Api;

/// <summary>
/// The HTTP API's bucket per user, all of its endpoints together (<c>Chat:Limits:ApiRequestsPerSecond</c>,
/// <c>Chat:Limits:ApiBurst</c>): the sockets have their frame limits, and without this one an authenticated client
/// could create conversations, and placeholder profiles for 100 external ids each, as fast as the database took them.
/// </summary>
internal sealed class ApiRateLimiter(IOptions<ChatLimitsOptions> limits, TimeProvider time)
    : PerUserRateLimiter(limits.Value.ApiRequestsPerSecond, limits.Value.ApiBurst, time);
