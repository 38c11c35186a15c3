using Chat.Core.Options;
using Chat.Core.Protocol;

namespace Chat.Core.Limits;

/// <summary>
/// One connection's rate limits, checked after a frame is read and before it is dispatched: <c>typing</c> and
/// <c>presence</c> each draw from a stricter bucket of their own, every other frame from the message bucket, frames
/// the reader refused included.
/// A refused frame has no effect and its answer says when to try again. A frame of a kind sent before that time
/// had come ignores the answer: those draw from a tolerance that regains one a second (frames already on the wire
/// when the answer left are thus forgiven); a client that exhausts it keeps flooding and is to be closed. A client
/// that waits as told is never closed, however much it has to send.
/// </summary>
public sealed class FrameRateLimiter(ChatLimitsOptions limits, TimeProvider time)
{
    private const double ForgivenPerSecond = 1;

    // Buckets are mutable structs: these fields are used in place, so none of them may be readonly.
    private TokenBucket _messages = new(limits.MessageBurst, limits.MessageRatePerSecond, time);
    private TokenBucket _typing = new(limits.TypingBurst, limits.TypingRatePerSecond, time);
    // A change of status is sent to every connection of every user who shares a conversation with the user, and
    // costs a pass over all of the user's conversations: at the message rate, one user's devices could send each of
    // their contacts a hundred presence frames a second.
    private TokenBucket _presence = new(limits.PresenceBurst, limits.PresenceRatePerSecond, time);
    private TokenBucket _tolerance = new(limits.RateLimitTolerance, ForgivenPerSecond, time);

    // The retry time last given for each kind of frame, as a timestamp.
    private long _messagesNotBefore = long.MinValue;
    private long _typingNotBefore = long.MinValue;
    private long _presenceNotBefore = long.MinValue;

    public RateDecision Check(ClientFrame frame) => Check(frame switch
    {
        TypingFrame => Kind.Typing,
        PresenceFrame => Kind.Presence,
        _ => Kind.Message,
    });

    /// <summary>
    /// For a frame the reader refused (malformed, or of an unknown type): it draws from the message bucket whatever
    /// type it claimed, so a client sending garbage is answered <c>rate_limited</c>, then closed, like any flooder.
    /// </summary>
    public RateDecision CheckUnreadable() => Check(Kind.Message);

    private enum Kind
    {
        Message,
        Typing,
        Presence,
    }

    private RateDecision Check(Kind kind)
    {
        ref var bucket = ref kind == Kind.Typing ? ref _typing : ref kind == Kind.Presence ? ref _presence : ref _messages;
        if (bucket.TryTake(out var retryAfter))
        {
            return RateDecision.Allowed;
        }
        ref var notBefore = ref kind == Kind.Typing ? ref _typingNotBefore : ref kind == Kind.Presence ? ref _presenceNotBefore : ref _messagesNotBefore;
        var now = time.GetTimestamp();
        var ignoredAnswer = now < notBefore;
        notBefore = now + (long)(retryAfter.TotalSeconds * time.TimestampFrequency);
        if (ignoredAnswer && !_tolerance.TryTake(out _))
        {
            return RateDecision.Flooding;
        }
        return RateDecision.Refused(retryAfter);
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
