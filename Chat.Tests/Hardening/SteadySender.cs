using System.Net.WebSockets;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Hardening;

/// <summary>
/// A member that sends messages one after another, as a well-behaved client does: each with a fresh key, the next
/// only once the previous one is acknowledged, and the same key again after <c>internal</c>. It stops when told to
/// or when its socket goes; the key then in flight is kept, to resend on a new connection.
/// </summary>
internal sealed class SteadySender(long conversationId, string keyPrefix)
{
    private int _next;

    /// <summary>Acknowledged keys with the message id and seq the ack named.</summary>
    public Dictionary<string, (long MessageId, long Seq)> Acked { get; } = [];

    /// <summary>Every key sent at least once.</summary>
    public HashSet<string> Sent { get; } = [];

    /// <summary>The key sent whose answer has not come.</summary>
    public string? InFlight { get; private set; }

    /// <summary>The codes of the errors received, in order.</summary>
    public List<string> Errors { get; } = [];

    /// <summary>Sends until <paramref name="stop"/> or until the socket goes; with <paramref name="limit"/>, at most that many acks.</summary>
    public async Task RunAsync(ChatTestClient client, CancellationToken stop, TimeSpan retryDelay, int? limit = null)
    {
        while (!stop.IsCancellationRequested && (limit is null || Acked.Count < limit))
        {
            var key = InFlight ??= $"{keyPrefix}-{_next++}";
            Sent.Add(key);
            try
            {
                await client.SendAsync(new { type = "message", conversationId, clientMessageId = key, content = "steady " + key });
            }
            catch (Exception e) when (e is WebSocketException or ObjectDisposedException)
            {
                return;
            }
            var answer = await client.TryNextAsync(f => f.Type() is "ack" or "error" && f.Str("clientMessageId") == key, TimeSpan.FromSeconds(20));
            if (answer is not { } frame)
            {
                return;
            }
            if (frame.Type() == "ack")
            {
                Acked[key] = (frame.Long("messageId"), frame.Long("seq"));
                InFlight = null;
                continue;
            }
            var code = frame.Str("code")!;
            Errors.Add(code);
            if (code != "internal")
            {
                Assert.Fail($"{key} was refused with {code}: {frame}");
            }
            await Task.Delay(retryDelay, CancellationToken.None);
        }
    }

    /// <summary>Rows stored per key in the conversation.</summary>
    public static async Task<Dictionary<string, KeyRows>> StoredAsync(long conversationId) =>
        (await Sql.QueryAsync<KeyRows>(
            """
            SELECT client_message_id AS Key, count(*) AS Rows, min(id) AS MessageId, min(seq) AS Seq FROM messages
            WHERE conversation_id = @conversationId GROUP BY client_message_id
            """, new { conversationId })).ToDictionary(r => r.Key);
}

internal sealed record KeyRows(string Key, long Rows, long MessageId, long Seq);
