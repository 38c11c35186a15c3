namespace Chat.Core.Sessions;

/// <summary>
/// When each open connection's access token expires, on one timer for all of them: the timer is armed for the
/// earliest expiry, and on firing runs every callback that is due and re-arms for the next.
/// </summary>
/// <remarks>
/// A timer per connection (with its wrapper, callback and closure) was about 280 bytes of every idle connection;
/// an entry here is one small object in a sorted set. Callbacks run on the timer's thread, outside the lock, and
/// must be short.
/// </remarks>
public sealed class TokenExpiryScheduler : IDisposable
{
    /// <summary>A timer cannot wait longer than this (about 49 days); a later expiry is reached in steps.</summary>
    private static readonly TimeSpan LongestWait = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly SortedSet<Entry> _due = new(Comparer<Entry>.Create(static (a, b) =>
        a.ExpiresAt != b.ExpiresAt ? a.ExpiresAt.CompareTo(b.ExpiresAt) : a.Order.CompareTo(b.Order)));
    private readonly ITimer _timer;
    private DateTimeOffset? _armedFor;
    private long _scheduled;

    public TokenExpiryScheduler(TimeProvider time)
    {
        _time = time;
        _timer = time.CreateTimer(static s => ((TokenExpiryScheduler)s!).Fire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Expiries waiting (for tests and diagnostics).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _due.Count;
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="expired"/> with <paramref name="state"/> once <paramref name="expiresAt"/> has come
    /// (at once if it has). Disposing the result before then cancels it.
    /// </summary>
    public IDisposable Schedule(DateTimeOffset expiresAt, Action<object> expired, object state)
    {
        var entry = new Entry(this, expiresAt, Interlocked.Increment(ref _scheduled), expired, state);
        lock (_lock)
        {
            _due.Add(entry);
            if (_armedFor is not { } armed || expiresAt < armed)
            {
                Arm(expiresAt);
            }
        }
        return entry;
    }

    public void Dispose() => _timer.Dispose();

    private void Fire()
    {
        List<Entry>? expired = null;
        lock (_lock)
        {
            _armedFor = null;
            var now = _time.GetUtcNow();
            while (_due.Min is { } first && first.ExpiresAt <= now)
            {
                _due.Remove(first);
                (expired ??= []).Add(first);
            }
            if (_due.Min is { } next)
            {
                Arm(next.ExpiresAt);
            }
        }
        foreach (var entry in expired ?? [])
        {
            entry.Run();
        }
    }

    // Under the lock.
    private void Arm(DateTimeOffset expiresAt)
    {
        var wait = expiresAt - _time.GetUtcNow();
        wait = wait < TimeSpan.Zero ? TimeSpan.Zero : wait > LongestWait ? LongestWait : wait;
        _armedFor = expiresAt;
        _timer.Change(wait, Timeout.InfiniteTimeSpan);
    }

    private void Cancel(Entry entry)
    {
        lock (_lock)
        {
            _due.Remove(entry);
        }
    }

    private sealed class Entry(TokenExpiryScheduler owner, DateTimeOffset expiresAt, long order, Action<object> expired, object state) : IDisposable
    {
        public DateTimeOffset ExpiresAt { get; } = expiresAt;

        public long Order { get; } = order;

        public void Run() => expired(state);

        public void Dispose() => owner.Cancel(this);
    }
}
