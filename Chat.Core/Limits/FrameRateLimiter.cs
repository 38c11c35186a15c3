using Chat.Core.Options;
using Chat.Core.Protocol;

namespace Chat.Core.Limits;

/// <summary>
/// One connection's rate limits, checked after a frame is read and before it is dispatched: <c>typing</c> draws
/// from its own, stricter bucket, every other frame from the message bucket. A refused frame has no effect and
/// its answer says when to try again. A frame of a kind sent before that time had come ignores the answer: those
/// draw from a tolerance that regains one a second (frames already on the wire when the answer left are thus
/// forgiven); a client that exhausts it keeps flooding and is to be closed. A client that waits as told is never
/// closed, however much it has to send.
/// </summary>
public sealed class FrameRateLimiter(ChatLimitsOptions limits, TimeProvider time)
{
    private const double ForgivenPerSecond = 1;

    private readonly Kind _messages = new(new TokenBucket(limits.MessageBurst, limits.MessageRatePerSecond, time));
    private readonly Kind _typing = new(new TokenBucket(limits.TypingBurst, limits.TypingRatePerSecond, time));
    private readonly TokenBucket _tolerance = new(limits.RateLimitTolerance, ForgivenPerSecond, time);

    public RateDecision Check(ClientFrame frame)
    {
        var kind = frame is TypingFrame ? _typing : _messages;
        if (kind.Bucket.TryTake(out var retryAfter))
        {
            return RateDecision.Allowed;
        }
        var now = time.GetTimestamp();
        var ignoredAnswer = now < kind.NotBefore;
        kind.NotBefore = now + (long)(retryAfter.TotalSeconds * time.TimestampFrequency);
        if (ignoredAnswer && !_tolerance.TryTake(out _))
        {
            return RateDecision.Flooding;
        }
        return RateDecision.Refused(retryAfter);
    }

    private sealed class Kind(TokenBucket bucket)
    {
        public TokenBucket Bucket { get; } = bucket;

        /// <summary>The retry time last given for this kind of frame, as a timestamp.</summary>
        public long NotBefore { get; set; } = long.MinValue;
    }
}

/// <param name="Outcome">Whether the frame may be handled.</param>
/// <param name="RetryAfter">For a refused frame: when the same kind of frame would be taken.</param>
public readonly record struct RateDecision(RateOutcome Outcome, TimeSpan RetryAfter)
{
    public static readonly RateDecision Allowed = new(RateOutcome.Allowed, TimeSpan.Zero);

    public static readonly RateDecision Flooding = new(RateOutcome.Flooding, TimeSpan.Zero);

    public static RateDecision Refused(TimeSpan retryAfter) => new(RateOutcome.Refused, retryAfter);
}

public enum RateOutcome
{
    /// <summary>Handle the frame.</summary>
    Allowed,

    /// <summary>Answer <c>rate_limited</c> and drop the frame.</summary>
    Refused,

    /// <summary>The client kept flooding past its tolerance: close the connection.</summary>
    Flooding,
}
