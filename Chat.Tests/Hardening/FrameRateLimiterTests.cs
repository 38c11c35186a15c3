using Chat.Core.Limits;
using Chat.Core.Options;
using Chat.Core.Protocol;
using Microsoft.Extensions.Time.Testing;

namespace Chat.Tests.Hardening;

public sealed class FrameRateLimiterTests
{
    private static readonly SendMessageFrame Message = new(1, "k", "hi", "text", null, null);
    private static readonly TypingFrame Typing = new(1, true);

    private readonly FakeTimeProvider _time = new();

    private FrameRateLimiter Limiter(int tolerance = 50) => new(new ChatLimitsOptions
    {
        MessageRatePerSecond = 10,
        MessageBurst = 20,
        TypingRatePerSecond = 2,
        TypingBurst = 5,
        PresenceRatePerSecond = 1,
        PresenceBurst = 3,
        RateLimitTolerance = tolerance,
    }, _time);

    [Test]
    public void A_full_bucket_takes_its_burst_then_refuses_with_the_time_to_the_next_token()
    {
        var limiter = Limiter();

        var taken = Enumerable.Range(0, 20).Select(_ => limiter.Check(Message).Outcome).ToList();
        var refused = limiter.Check(Message);

        Assert.That(taken, Is.All.EqualTo(RateOutcome.Allowed));
        Assert.That(refused.Outcome, Is.EqualTo(RateOutcome.Refused));
        Assert.That(refused.RetryAfter, Is.EqualTo(TimeSpan.FromMilliseconds(100)).Within(TimeSpan.FromMilliseconds(1)));
    }

    [Test]
    public void The_bucket_refills_at_its_rate_and_no_faster()
    {
        var limiter = Limiter();
        for (var i = 0; i < 20; i++)
        {
            limiter.Check(Message);
        }

        _time.Advance(TimeSpan.FromMilliseconds(99));
        var early = limiter.Check(Message).Outcome;
        _time.Advance(TimeSpan.FromMilliseconds(2));
        var onTime = limiter.Check(Message).Outcome;
        _time.Advance(TimeSpan.FromSeconds(60));
        var afterAMinute = Enumerable.Range(0, 21).Count(_ => limiter.Check(Message).Outcome == RateOutcome.Allowed);

        Assert.That(early, Is.EqualTo(RateOutcome.Refused));
        Assert.That(onTime, Is.EqualTo(RateOutcome.Allowed));
        Assert.That(afterAMinute, Is.EqualTo(20), "a long pause refills the bucket to its size, not beyond");
    }

    [Test]
    public void Typing_and_messages_draw_from_separate_buckets()
    {
        var limiter = Limiter();

        var typing = Enumerable.Range(0, 6).Select(_ => limiter.Check(Typing).Outcome).ToList();
        var message = limiter.Check(Message).Outcome;

        Assert.That(typing.Count(o => o == RateOutcome.Allowed), Is.EqualTo(5));
        Assert.That(typing[5], Is.EqualTo(RateOutcome.Refused));
        Assert.That(message, Is.EqualTo(RateOutcome.Allowed));
    }

    [Test]
    public void Read_frames_share_the_message_bucket()
    {
        var limiter = Limiter();

        var outcomes = Enumerable.Range(0, 21).Select(i => limiter.Check(i % 2 == 0 ? new ReadFrame(1, 1) : Message).Outcome).ToList();

        Assert.That(outcomes.Take(20), Is.All.EqualTo(RateOutcome.Allowed));
        Assert.That(outcomes[20], Is.EqualTo(RateOutcome.Refused));
    }

    [Test]
    public void Presence_draws_from_a_bucket_of_its_own_that_refills_at_its_own_rate()
    {
        var limiter = Limiter();
        var away = new PresenceFrame(PresenceStatus.Away);

        var presence = Enumerable.Range(0, 4).Select(_ => limiter.Check(away)).ToList();
        var others = new[] { limiter.Check(Message).Outcome, limiter.Check(Typing).Outcome };
        _time.Advance(TimeSpan.FromMilliseconds(999));
        var early = limiter.Check(away).Outcome;
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var onTime = limiter.Check(away).Outcome;

        Assert.That(presence.Take(3).Select(d => d.Outcome), Is.All.EqualTo(RateOutcome.Allowed));
        Assert.That(presence[3].Outcome, Is.EqualTo(RateOutcome.Refused));
        Assert.That(presence[3].RetryAfter, Is.EqualTo(TimeSpan.FromSeconds(1)).Within(TimeSpan.FromMilliseconds(1)));
        Assert.That(others, Is.All.EqualTo(RateOutcome.Allowed), "messages and typing keep their own buckets");
        Assert.That(early, Is.EqualTo(RateOutcome.Refused));
        Assert.That(onTime, Is.EqualTo(RateOutcome.Allowed));
    }

    [Test]
    public void A_client_that_keeps_sending_presence_past_its_bucket_is_marked_a_flooder()
    {
        var limiter = Limiter(tolerance: 5);
        var away = new PresenceFrame(PresenceStatus.Away);

        var outcomes = Enumerable.Range(0, 10).Select(_ => limiter.Check(away).Outcome).ToList();

        Assert.That(outcomes.Skip(3).Take(6), Is.All.EqualTo(RateOutcome.Refused), "one refusal, then five frames that ignored it, tolerated");
        Assert.That(outcomes[9], Is.EqualTo(RateOutcome.Flooding));
    }

    [Test]
    public void Frames_the_reader_refused_share_the_message_bucket_and_leave_typing_alone()
    {
        var limiter = Limiter();

        var unreadable = Enumerable.Range(0, 20).Select(_ => limiter.CheckUnreadable().Outcome).ToList();
        var message = limiter.Check(Message);
        var typing = limiter.Check(Typing).Outcome;

        Assert.That(unreadable, Is.All.EqualTo(RateOutcome.Allowed));
        Assert.That(message.Outcome, Is.EqualTo(RateOutcome.Refused), "the garbage emptied the bucket messages draw from");
        Assert.That(typing, Is.EqualTo(RateOutcome.Allowed));
    }

    [Test]
    public void A_client_that_keeps_sending_unreadable_frames_is_marked_a_flooder()
    {
        var limiter = Limiter(tolerance: 5);

        var outcomes = Enumerable.Range(0, 27).Select(_ => limiter.CheckUnreadable().Outcome).ToList();

        Assert.That(outcomes.Skip(20).Take(6), Is.All.EqualTo(RateOutcome.Refused));
        Assert.That(outcomes[26], Is.EqualTo(RateOutcome.Flooding));
    }

    [Test]
    public void Frames_that_ignore_the_retry_time_past_the_tolerance_mark_a_flooder()
    {
        var limiter = Limiter(tolerance: 5);
        for (var i = 0; i < 20; i++)
        {
            limiter.Check(Message);
        }

        var outcomes = Enumerable.Range(0, 7).Select(_ => limiter.Check(Message).Outcome).ToList();

        Assert.That(outcomes.Take(6), Is.All.EqualTo(RateOutcome.Refused), "one refusal, then five frames that ignored it, tolerated");
        Assert.That(outcomes[6], Is.EqualTo(RateOutcome.Flooding));
    }

    [Test]
    public void A_client_that_waits_as_told_after_each_refusal_is_never_a_flooder()
    {
        var limiter = Limiter(tolerance: 5);
        var outcomes = new List<RateOutcome>();
        var end = _time.GetUtcNow() + TimeSpan.FromMinutes(10);

        // A client that would send every 10 ms, and waits retryAfter whenever it is refused.
        while (_time.GetUtcNow() < end && outcomes.Count < 1_000_000)
        {
            var decision = limiter.Check(Message);
            outcomes.Add(decision.Outcome);
            _time.Advance(decision.Outcome == RateOutcome.Refused ? decision.RetryAfter : TimeSpan.FromMilliseconds(10));
        }

        Assert.That(outcomes, Has.None.EqualTo(RateOutcome.Flooding));
        Assert.That(outcomes.Count(o => o == RateOutcome.Allowed), Is.EqualTo(20 + 600 * 10).Within(2));
    }

    [Test]
    public void Ignored_retry_times_are_forgiven_one_a_second()
    {
        var limiter = Limiter(tolerance: 5);
        var spent = Enumerable.Range(0, 27).Select(_ => limiter.Check(Message).Outcome).ToList();

        _time.Advance(TimeSpan.FromSeconds(3));
        var after = Enumerable.Range(0, 25).Select(_ => limiter.Check(Message).Outcome).ToList();

        Assert.That(spent[26], Is.EqualTo(RateOutcome.Flooding), "20 taken, 1 refused, 5 tolerated, then a flooder");
        Assert.That(after.Take(20), Is.All.EqualTo(RateOutcome.Allowed), "the message bucket refilled to its size");
        Assert.That(after.Skip(20).Take(4), Is.All.EqualTo(RateOutcome.Refused), "a fresh refusal, and three seconds forgave three more");
        Assert.That(after[24], Is.EqualTo(RateOutcome.Flooding));
    }
}
