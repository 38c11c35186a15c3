using Chat.Core.Options;
using Microsoft.Extensions.Options;

namespace Chat.Core.Limits;

/// <summary>
/// Counts each user's live connections so that one more than <c>MaxConnectionsPerUser</c> is refused at the
/// handshake, before any work is done for it. Admission is atomic, so simultaneous handshakes cannot slip past
/// the limit together; a user's entry goes with their last connection.
/// </summary>
public sealed class UserConnectionLimiter(IOptions<ChatLimitsOptions> options)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);

    /// <summary>Counts a connection of <paramref name="externalId"/> in, unless the user is at the limit. Dispose the lease when it closes.</summary>
    public Lease? TryAdmit(string externalId)
    {
        lock (_lock)
        {
            var count = _counts.GetValueOrDefault(externalId);
            if (count >= options.Value.MaxConnectionsPerUser)
            {
                return null;
            }
            _counts[externalId] = count + 1;
            return new Lease(this, externalId);
        }
    }

    /// <summary>Users with at least one admitted connection (zero when idle: nothing leaks).</summary>
    public int UserCount
    {
        get
        {
            lock (_lock)
            {
                return _counts.Count;
            }
        }
    }

    private void Release(string externalId)
    {
        lock (_lock)
        {
            if (_counts[externalId] == 1)
            {
                _counts.Remove(externalId);
            }
            else
            {
                _counts[externalId]--;
            }
        }
    }

    public sealed class Lease(UserConnectionLimiter owner, string externalId) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                owner.Release(externalId);
            }
        }
    }
}
