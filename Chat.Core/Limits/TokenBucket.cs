namespace Chat.Core.Limits;

/// <summary>
/// A token bucket on <see cref="TimeProvider"/> timestamps: holds up to <c>capacity</c> tokens and regains
/// <c>ratePerSecond</c> of them per second. Not thread-safe: each belongs to one connection's receive loop.
/// </summary>
/// <remarks>
/// A mutable struct, kept in a field of its owner and used in place (never copied): every connection has four,
/// and as objects of their own they were a tenth of what the gateway itself keeps per idle connection.
/// </remarks>
internal struct TokenBucket
{
    private readonly double _capacity;
    private readonly double _ratePerSecond;
    private readonly TimeProvider _time;
    private double _tokens;
    private long _refilledAt;

    public TokenBucket(double capacity, double ratePerSecond, TimeProvider time)
    {
        _capacity = capacity;
        _ratePerSecond = ratePerSecond;
        _time = time;
        _tokens = capacity;
        _refilledAt = time.GetTimestamp();
    }

    /// <summary>Takes one token. When there is none, says how long until there is one.</summary>
    public bool TryTake(out TimeSpan retryAfter)
    {
        Refill();
        // A client that waited exactly the retry time must get its token despite rounding.
        if (_tokens >= 1 - 1e-9)
        {
            _tokens -= 1;
            retryAfter = TimeSpan.Zero;
            return true;
        }
        // Rounded up, so that waiting this long is always enough.
        retryAfter = TimeSpan.FromTicks(Math.Max(1, (long)Math.Ceiling((1 - _tokens) / _ratePerSecond * TimeSpan.TicksPerSecond)));
        return false;
    }

    private void Refill()
    {
        var now = _time.GetTimestamp();
        _tokens = Math.Min(_capacity, _tokens + _time.GetElapsedTime(_refilledAt, now).TotalSeconds * _ratePerSecond);
        _refilledAt = now;
    }
}
