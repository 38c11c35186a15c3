using System.ComponentModel.DataAnnotations;

namespace Chat.Core.Options;

/// <summary><c>Chat:Limits</c>: what one connection may send and hold.</summary>
public sealed class ChatLimitsOptions : IValidatableObject
{
    /// <summary>What a message frame may add to its content: the sender's name and avatar, ids, times, the key.</summary>
    public const int MessageFrameOverheadBytes = 4096;

    public const string Section = "Chat:Limits";

    /// <summary>Largest message (all its continuation frames together) a client may send, in bytes.</summary>
    [Range(1024, 16 * 1024 * 1024, ErrorMessage = "Chat:Limits:MaxFrameBytes must be between {1} and {2}.")]
    public int MaxFrameBytes { get; set; } = 64 * 1024;

    /// <summary>Longest message content, in UTF-16 code units (JavaScript's <c>String.length</c>).</summary>
    [Range(1, 1_000_000, ErrorMessage = "Chat:Limits:MaxContentLength must be between {1} and {2}.")]
    public int MaxContentLength { get; set; } = 4000;

    /// <summary>Frames that may wait in one connection's send queue; past it the connection is closed as a slow consumer.</summary>
    [Range(8, 1_000_000, ErrorMessage = "Chat:Limits:SendQueueCapacity must be between {1} and {2}.")]
    public int SendQueueCapacity { get; set; } = 1024;

    /// <summary>Bytes that may wait in one connection's send queue; past it the connection is closed as a slow consumer.</summary>
    // The least that Validate below accepts with the smallest MaxFrameBytes, so that the range never names a minimum
    // that would still be refused.
    [Range(2 * (1024 + MessageFrameOverheadBytes), int.MaxValue, ErrorMessage = "Chat:Limits:SendQueueMaxBytes must be between {1} and {2}.")]
    public int SendQueueMaxBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// Active members a conversation may have: past it, creating one answers 400 and adding a member 409. Every
    /// stored message updates each other member's unread count, so this bounds the database work of one message.
    /// </summary>
    [Range(2, 100_000, ErrorMessage = "Chat:Limits:MaxConversationMembers must be between {1} and {2}.")]
    public int MaxConversationMembers { get; set; } = 1000;

    /// <summary>Messages replayed per conversation on connect; <c>ready.hasMore</c> says when more remain.</summary>
    [Range(0, 10_000, ErrorMessage = "Chat:Limits:CatchupLimitPerConversation must be between {1} and {2}.")]
    public int CatchupLimitPerConversation { get; set; } = 100;

    /// <summary>How often the server pings an idle socket.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "Chat:Limits:KeepAliveInterval must be between 00:00:01 and 01:00:00 (hh:mm:ss; a bare number is read as days).")]
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a ping may go unanswered before the socket is dropped as half-open.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "Chat:Limits:KeepAliveTimeout must be between 00:00:01 and 01:00:00 (hh:mm:ss; a bare number is read as days).")]
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a typing indicator lasts without a renewal before the server announces it stopped.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00", ErrorMessage = "Chat:Limits:TypingTimeout must be between 00:00:01 and 00:10:00 (hh:mm:ss; a bare number is read as days).")]
    public TimeSpan TypingTimeout { get; set; } = TimeSpan.FromSeconds(8);

    /// <summary>How long a closing connection may take to flush and finish the close handshake before it is aborted.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00", ErrorMessage = "Chat:Limits:CloseTimeout must be between 00:00:00.1 and 00:01:00 (hh:mm:ss; a bare number is read as days).")]
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Live connections one user may hold; one more is refused at the handshake with 429.</summary>
    [Range(1, 10_000, ErrorMessage = "Chat:Limits:MaxConnectionsPerUser must be between {1} and {2}.")]
    public int MaxConnectionsPerUser { get; set; } = 10;

    /// <summary>Sustained rate of frames other than <c>typing</c> and <c>presence</c> (which have buckets of their own) one connection may send (a token bucket's refill).</summary>
    [Range(0.1, 100_000.0, ErrorMessage = "Chat:Limits:MessageRatePerSecond must be between {1} and {2}.")]
    public double MessageRatePerSecond { get; set; } = 10;

    /// <summary>How many frames other than <c>typing</c> and <c>presence</c> may come at once (the bucket's size).</summary>
    [Range(1, 1_000_000, ErrorMessage = "Chat:Limits:MessageBurst must be between {1} and {2}.")]
    public int MessageBurst { get; set; } = 20;

    /// <summary>Sustained rate of <c>typing</c> frames: stricter, since clients need one every few seconds.</summary>
    [Range(0.1, 100_000.0, ErrorMessage = "Chat:Limits:TypingRatePerSecond must be between {1} and {2}.")]
    public double TypingRatePerSecond { get; set; } = 2;

    /// <summary>How many <c>typing</c> frames may come at once.</summary>
    [Range(1, 1_000_000, ErrorMessage = "Chat:Limits:TypingBurst must be between {1} and {2}.")]
    public int TypingBurst { get; set; } = 5;

    /// <summary>
    /// Sustained rate of <c>presence</c> frames: each change of status goes to every connection of every user who
    /// shares a conversation with the sender, so it is held well below the message rate.
    /// </summary>
    [Range(0.1, 100_000.0, ErrorMessage = "Chat:Limits:PresenceRatePerSecond must be between {1} and {2}.")]
    public double PresenceRatePerSecond { get; set; } = 1;

    /// <summary>How many <c>presence</c> frames may come at once.</summary>
    [Range(1, 1_000_000, ErrorMessage = "Chat:Limits:PresenceBurst must be between {1} and {2}.")]
    public int PresenceBurst { get; set; } = 5;

    /// <summary>
    /// Frames a connection may send before the retry time its last <c>rate_limited</c> answer gave (one forgiven
    /// per second) before it is closed with 1008 as a flooder: a client that waits as told never gets near it.
    /// </summary>
    [Range(1, 1_000_000, ErrorMessage = "Chat:Limits:RateLimitTolerance must be between {1} and {2}.")]
    public int RateLimitTolerance { get; set; } = 50;

    /// <summary>Sustained rate of HTTP API requests one user may make, all <c>/api</c> endpoints together; past the burst, 429.</summary>
    [Range(1, 100_000, ErrorMessage = "Chat:Limits:ApiRequestsPerSecond must be between {1} and {2}.")]
    public int ApiRequestsPerSecond { get; set; } = 10;

    /// <summary>How many HTTP API requests one user may make at once (the bucket's size).</summary>
    [Range(1, 1_000_000, ErrorMessage = "Chat:Limits:ApiBurst must be between {1} and {2}.")]
    public int ApiBurst { get; set; } = 30;

    /// <summary>
    /// Sustained rate of WebSocket handshakes one user may make, all of their devices together; past the burst, 429.
    /// Every connection stores the profile, reads its catch-up and is announced to the user's contacts.
    /// </summary>
    [Range(0.01, 100_000.0, ErrorMessage = "Chat:Limits:HandshakesPerSecond must be between {1} and {2}.")]
    public double HandshakesPerSecond { get; set; } = 1;

    /// <summary>How many handshakes one user may make at once: all their devices reconnecting after a restart.</summary>
    [Range(1, 1_000_000, ErrorMessage = "Chat:Limits:HandshakeBurst must be between {1} and {2}.")]
    public int HandshakeBurst { get; set; } = 20;

    /// <summary>Upgraded (WebSocket) connections the server holds at once (Kestrel's MaxConcurrentUpgradedConnections); past it the handshake gets 503.</summary>
    [Range(1, 10_000_000, ErrorMessage = "Chat:Limits:MaxConnections must be between {1} and {2}.")]
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>Total size of a request's headers in bytes (Kestrel's MaxRequestHeadersTotalSize); past it the handshake gets 431.</summary>
    [Range(4096, 1024 * 1024, ErrorMessage = "Chat:Limits:MaxRequestHeadersBytes must be between {1} and {2}.")]
    public int MaxRequestHeadersBytes { get; set; } = 16 * 1024;

    /// <summary>How long a client may take to send the handshake's headers (Kestrel's RequestHeadersTimeout).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00", ErrorMessage = "Chat:Limits:HandshakeTimeout must be between 00:00:01 and 00:05:00 (hh:mm:ss; a bare number is read as days).")]
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a plain HTTP connection stays open with no request under way (Kestrel's KeepAliveTimeout): between
    /// requests, and before the first byte of the first one, which HandshakeTimeout does not cover. Kestrel's default
    /// is kept, since a load balancer in front reuses idle connections for up to its own idle timeout.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "Chat:Limits:HttpKeepAliveTimeout must be between 00:00:01 and 01:00:00 (hh:mm:ss; a bare number is read as days).")]
    public TimeSpan HttpKeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(130);

    /// <summary>
    /// A message frame sent out can be as large as one received (its content is escaped no more than the client
    /// had to) plus its other fields. A catch-up fills at most half of a connection's queue, and live frames held
    /// meanwhile the other half: each half must hold the largest message, or a client that keeps up could be
    /// closed as a slow consumer for one long message.
    /// </summary>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var largestMessage = (long)MaxFrameBytes + MessageFrameOverheadBytes;
        if (SendQueueMaxBytes < 2 * largestMessage)
        {
            yield return new ValidationResult(
                $"Chat:Limits:SendQueueMaxBytes ({SendQueueMaxBytes}) must be at least 2 × (Chat:Limits:MaxFrameBytes + {MessageFrameOverheadBytes}) = {2 * largestMessage}: each half of the send queue must hold the largest message.",
                [nameof(SendQueueMaxBytes)]);
        }
    }
}
