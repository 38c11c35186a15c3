using Chat.Core.Sessions;
using Microsoft.Extensions.Time.Testing;

namespace Chat.Tests.Hardening;

[FixtureLifeCycle(LifeCycle.InstancePerTestCase)]
public sealed class TokenExpirySchedulerTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero));
    private readonly List<string> _expired = [];

    private IDisposable Schedule(TokenExpiryScheduler scheduler, TimeSpan after, string name) =>
        scheduler.Schedule(_time.GetUtcNow() + after, s => _expired.Add((string)s), name);

    [Test]
    public void Each_expiry_runs_once_when_its_time_comes_and_not_before_in_the_order_of_the_times()
    {
        using var scheduler = new TokenExpiryScheduler(_time);
        Schedule(scheduler, TimeSpan.FromMinutes(30), "late");
        Schedule(scheduler, TimeSpan.FromMinutes(10), "early");
        Schedule(scheduler, TimeSpan.FromMinutes(10), "early too");

        _time.Advance(TimeSpan.FromMinutes(10) - TimeSpan.FromMilliseconds(1));
        Assert.That(_expired, Is.Empty);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.That(_expired, Is.EqualTo(new[] { "early", "early too" }));
        _time.Advance(TimeSpan.FromMinutes(20));
        Assert.That(_expired, Is.EqualTo(new[] { "early", "early too", "late" }));
        _time.Advance(TimeSpan.FromHours(1));
        Assert.That(_expired, Has.Count.EqualTo(3));
        Assert.That(scheduler.Count, Is.Zero);
    }

    [Test]
    public void An_expiry_scheduled_before_the_armed_one_is_not_kept_waiting_for_it()
    {
        using var scheduler = new TokenExpiryScheduler(_time);
        Schedule(scheduler, TimeSpan.FromHours(1), "hour");
        Schedule(scheduler, TimeSpan.FromMinutes(1), "minute");

        _time.Advance(TimeSpan.FromMinutes(1));

        Assert.That(_expired, Is.EqualTo(new[] { "minute" }));
    }

    [Test]
    public void A_cancelled_expiry_never_runs_and_leaves_nothing_behind()
    {
        using var scheduler = new TokenExpiryScheduler(_time);
        var closed = Schedule(scheduler, TimeSpan.FromMinutes(1), "closed connection");
        Schedule(scheduler, TimeSpan.FromMinutes(2), "open connection");

        closed.Dispose();
        _time.Advance(TimeSpan.FromMinutes(5));

        Assert.That(_expired, Is.EqualTo(new[] { "open connection" }));
        Assert.That(scheduler.Count, Is.Zero);
    }

    [Test]
    public void A_token_that_has_already_expired_runs_at_once()
    {
        using var scheduler = new TokenExpiryScheduler(_time);
        Schedule(scheduler, TimeSpan.FromSeconds(-5), "past");

        Assert.That(_expired, Is.EqualTo(new[] { "past" }));
    }

    [Test]
    public void An_expiry_further_away_than_a_timer_can_wait_is_reached_in_steps()
    {
        using var scheduler = new TokenExpiryScheduler(_time);
        Schedule(scheduler, TimeSpan.FromDays(120), "long-lived");

        _time.Advance(TimeSpan.FromDays(60));
        Assert.That(_expired, Is.Empty);
        _time.Advance(TimeSpan.FromDays(59));
        Assert.That(_expired, Is.Empty);
        _time.Advance(TimeSpan.FromDays(1));

        Assert.That(_expired, Is.EqualTo(new[] { "long-lived" }));
    }
}
