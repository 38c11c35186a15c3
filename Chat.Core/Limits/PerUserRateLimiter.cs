using System.Collections.Concurrent;

namespace Chat.Core.Limits;

/// <summary>
/// A token bucket per user, keyed by external id, for what a user may do at some rate whatever connection or request
/// it comes through (the HTTP API's requests, the WebSocket handshakes).
/// </summary>
/// <remarks>
/// Not System.Threading.RateLimiting's PartitionedRateLimiter: with <c>AutoReplenishment = false</c> its token
/// bucket does not move its refill clock while the bucket is full, so the first refill after an idle pause credits
/// the whole pause, and a user who had paused got a second burst a tenth of a second after the first
/// (ApiRateLimiterTests). Here a bucket refills when it is asked, from the time it was last asked; buckets that have
/// refilled to full are dropped now and then, so the table holds only the users who were busy lately.
/// </remarks>
public abstract class PerUserRateLimiter(double ratePerSecond, int burst, TimeProvider time)
{
    /// <summary>How often full buckets are looked for and dropped (on a request, not on a timer of its own).</summary>
    internal static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(10);

    private readonly double _capacity = burst;
    private readonly double _ratePerSecond = ratePerSecond;
    private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);
    private long _sweptAt = time.GetTimestamp();

    /// <summary>Users with a bucket now (tests).</summary>
    internal int Tracked => _buckets.Count;

    /// <summary>Takes one of the user's tokens; false, with when to come back, when their bucket is empty.</summary>
    public bool TryTake(string externalId, out TimeSpan retryAfter)
    {
        var now = time.GetTimestamp();
        SweepIfDue(now);
        while (true)
        {
            var bucket = _buckets.GetOrAdd(externalId, static (_, state) => new Bucket(state.Capacity, state.Now), (Capacity: _capacity, Now: now));
            lock (bucket)
            {
                if (bucket.Dropped)
                {
                    // Swept just now: the next GetOrAdd makes a fresh one, full as this one was.
                    continue;
                }
                bucket.Refill(now, _capacity, _ratePerSecond, time);
                // A client that waited exactly the retry time must get its token despite rounding.
                if (bucket.Tokens >= 1 - 1e-9)
                {
                    bucket.Tokens -= 1;
                    retryAfter = TimeSpan.Zero;
                    return true;
                }
                // Rounded up, so that waiting this long is always enough.
                retryAfter = TimeSpan.FromTicks(Math.Max(1, (long)Math.Ceiling((1 - bucket.Tokens) / _ratePerSecond * TimeSpan.TicksPerSecond)));
                return false;
            }
        }
    }

    private void SweepIfDue(long now)
    {
        var sweptAt = Interlocked.Read(ref _sweptAt);
        if (time.GetElapsedTime(sweptAt, now) < SweepInterval || Interlocked.CompareExchange(ref _sweptAt, now, sweptAt) != sweptAt)
        {
            return;
        }
        foreach (var (user, bucket) in _buckets)
        {
            lock (bucket)
            {
                bucket.Refill(now, _capacity, _ratePerSecond, time);
                if (bucket.Tokens >= _capacity)
                {
                    // A full bucket is what a new one would be: nothing is forgotten by dropping it.
                    bucket.Dropped = true;
                    _buckets.TryRemove(new KeyValuePair<string, Bucket>(user, bucket));
                }
            }
        }
    }

    private sealed class Bucket(double tokens, long refilledAt)
    {
        public double Tokens = tokens;
        public long RefilledAt = refilledAt;
        public bool Dropped;

        public void Refill(long now, double capacity, double ratePerSecond, TimeProvider time)
        {
            if (now <= RefilledAt)
            {
                return;
            }
            Tokens = Math.Min(capacity, Tokens + time.GetElapsedTime(RefilledAt, now).TotalSeconds * ratePerSecond);
            RefilledAt = now;
        }
    }
}
