using Chat.Core.Options;
using Chat.Gateway.Api;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Chat.Tests.Api;

/// <summary>The HTTP API's bucket per user, on a fake clock (ApiRateLimitTests has it in a gateway).</summary>
public sealed class ApiRateLimiterTests
{
    private readonly FakeTimeProvider _time = new();

    private ApiRateLimiter Limiter(int burst = 3, int perSecond = 1) =>
        new(Options.Create(new ChatLimitsOptions { ApiBurst = burst, ApiRequestsPerSecond = perSecond }), _time);

    private static int Take(ApiRateLimiter limiter, string user, int count) => Enumerable.Range(0, count).Count(_ => limiter.TryTake(user, out TimeSpan _));

    // System.Threading.RateLimiting's token bucket without auto-replenishment kept its refill clock still while the
    // bucket was full: the first refill after a pause credited the whole pause, a second burst at once.
    [Test]
    public void After_an_idle_pause_a_user_gets_one_burst_not_two()
    {
        var limiter = Limiter();
        Assert.That(Take(limiter, "alice", 3), Is.EqualTo(3));
        _time.Advance(TimeSpan.FromSeconds(5));

        Assert.That(Take(limiter, "alice", 3), Is.EqualTo(3), "the burst");
        _time.Advance(TimeSpan.FromMilliseconds(300));

        Assert.That(Take(limiter, "alice", 3), Is.Zero, "0.3 s at 1 a second is a third of a token");
    }

    [Test]
    public void The_bucket_refills_at_its_rate_and_says_when_the_next_request_is_taken()
    {
        var limiter = Limiter(burst: 3, perSecond: 2);
        Assert.That(Take(limiter, "alice", 4), Is.EqualTo(3));

        Assert.That(limiter.TryTake("alice", out var retryAfter), Is.False);
        Assert.That(retryAfter, Is.EqualTo(TimeSpan.FromMilliseconds(500)));
        _time.Advance(TimeSpan.FromMilliseconds(499));
        Assert.That(limiter.TryTake("alice", out _), Is.False);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.That(limiter.TryTake("alice", out _), Is.True);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.That(Take(limiter, "alice", 4), Is.EqualTo(3), "never more than the burst");
        Assert.That(Take(limiter, "bob", 4), Is.EqualTo(3), "a bucket per user");
    }

    [Test]
    public void Buckets_that_have_refilled_are_dropped_and_busy_ones_kept()
    {
        var limiter = Limiter(burst: 3, perSecond: 1);
        Take(limiter, "idle", 3);
        _time.Advance(ApiRateLimiter.SweepInterval - TimeSpan.FromSeconds(1));
        Take(limiter, "busy", 3);
        Assert.That(limiter.Tracked, Is.EqualTo(2), "no sweep before its interval");

        _time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.That(Take(limiter, "busy", 1), Is.Zero, "half a token");
        _time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.That(Take(limiter, "busy", 1), Is.EqualTo(1), "a token, after the sweep that this request ran");

        Assert.That(limiter.Tracked, Is.EqualTo(1), "the idle user's full bucket is gone");
        Assert.That(Take(limiter, "busy", 3), Is.Zero, "the busy user's bucket was kept, not replaced by a full one");
        Assert.That(Take(limiter, "idle", 4), Is.EqualTo(3), "a dropped bucket comes back full");
    }
}
