using System.ComponentModel.DataAnnotations;

namespace Chat.Core.Options;

/// <summary><c>Chat:Limits</c>: what one connection may send and hold.</summary>
public sealed class ChatLimitsOptions
{
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
    [Range(4096, int.MaxValue, ErrorMessage = "Chat:Limits:SendQueueMaxBytes must be between {1} and {2}.")]
    public int SendQueueMaxBytes { get; set; } = 1024 * 1024;

    /// <summary>Messages replayed per conversation on connect; <c>ready.hasMore</c> says when more remain.</summary>
    [Range(0, 10_000, ErrorMessage = "Chat:Limits:CatchupLimitPerConversation must be between {1} and {2}.")]
    public int CatchupLimitPerConversation { get; set; } = 100;

    /// <summary>How often the server pings an idle socket.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "Chat:Limits:KeepAliveInterval must be between {1} and {2}.")]
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a ping may go unanswered before the socket is dropped as half-open.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "Chat:Limits:KeepAliveTimeout must be between {1} and {2}.")]
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a typing indicator lasts without a renewal before the server announces it stopped.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00", ErrorMessage = "Chat:Limits:TypingTimeout must be between {1} and {2}.")]
    public TimeSpan TypingTimeout { get; set; } = TimeSpan.FromSeconds(8);

    /// <summary>How long a closing connection may take to flush and finish the close handshake before it is aborted.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00", ErrorMessage = "Chat:Limits:CloseTimeout must be between {1} and {2}.")]
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
