using System.Threading.RateLimiting;
using Chat.Core.Options;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.Api;

/// <summary>
/// A token bucket per user for the HTTP API, all of its endpoints together (<c>Chat:Limits:ApiRequestsPerSecond</c>,
/// <c>Chat:Limits:ApiBurst</c>): the sockets have their frame limits, and without this one an authenticated client
/// could create conversations, and placeholder profiles for 100 external ids each, as fast as the database took them.
/// </summary>
internal sealed class ApiRateLimiter : IDisposable
{
    private readonly PartitionedRateLimiter<string> _limiter;

    public ApiRateLimiter(IOptions<ChatLimitsOptions> limits)
    {
        var options = new TokenBucketRateLimiterOptions
        {
            TokenLimit = limits.Value.ApiBurst,
            TokensPerPeriod = limits.Value.ApiRequestsPerSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            // Refused at once, never queued: the client is told when to come back.
            QueueLimit = 0,
            // The partitioned limiter refills every user's bucket from one timer of its own, and drops the buckets
            // of users who have been idle for a while, rather than a timer per user.
            AutoReplenishment = false,
        };
        _limiter = PartitionedRateLimiter.Create<string, string>(user => RateLimitPartition.GetTokenBucketLimiter(user, _ => options));
    }

    /// <summary>Takes one request of the user's; false, with when to come back, when their bucket is empty.</summary>
    public bool TryTake(string externalId, out TimeSpan retryAfter)
    {
        using var lease = _limiter.AttemptAcquire(externalId);
        retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1);
        return lease.IsAcquired;
    }

    public void Dispose() => _limiter.Dispose();
}
