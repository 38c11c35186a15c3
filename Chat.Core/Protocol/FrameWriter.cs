using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Chat.Data.Messages;

namespace Chat.Core.Protocol;

/// <summary>
/// Serializes server frames to UTF-8 JSON. Each call returns the finished bytes, so a broadcast is serialized
/// once and the same array is queued to every recipient.
/// </summary>
public static class FrameWriter
{
    // Content is user text: keep it as typed (no \u escaping of non-ASCII, emoji or HTML characters) so that it is
    // echoed byte for byte. JSON string escaping still applies, so the output is always valid JSON.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JsonTextEncoder.Instance };

    public static byte[] Welcome(long userId, string externalId, string displayName, DateTime serverTime, ClientLimits limits) => Write(w =>
    {
        w.WriteString("type", "welcome");
        w.WriteNumber("userId", userId);
        w.WriteString("externalId", externalId);
        w.WriteString("displayName", displayName);
        WriteTime(w, "serverTime", serverTime);
        w.WriteStartObject("limits");
        w.WriteNumber("maxFrameBytes", limits.MaxFrameBytes);
        w.WriteNumber("maxContentLength", limits.MaxContentLength);
        w.WriteNumber("framesPerSecond", limits.FramesPerSecond);
        w.WriteNumber("frameBurst", limits.FrameBurst);
        w.WriteNumber("typingPerSecond", limits.TypingPerSecond);
        w.WriteNumber("typingBurst", limits.TypingBurst);
        w.WriteNumber("presencePerSecond", limits.PresencePerSecond);
        w.WriteNumber("presenceBurst", limits.PresenceBurst);
        w.WriteEndObject();
    });

    public static byte[] Message(StoredMessage m, bool isCatchup) => Write(w =>
    {
        w.WriteString("type", "message");
        w.WriteNumber("conversationId", m.ConversationId);
        w.WriteNumber("messageId", m.MessageId);
        w.WriteNumber("seq", m.Seq);
        w.WriteNumber("senderId", m.SenderId);
        w.WriteString("senderName", m.SenderName);
        WriteNullableString(w, "senderAvatarUrl", m.SenderAvatarUrl);
        w.WriteString("content", m.Content);
        w.WriteString("messageType", m.MessageType);
        WriteNullableNumber(w, "replyToMessageId", m.ReplyToMessageId);
        WriteNullableString(w, "mediaUrl", m.MediaUrl);
        WriteTime(w, "timestamp", m.CreatedAt);
        w.WriteString("clientMessageId", m.ClientMessageId);
        w.WriteBoolean("isCatchup", isCatchup);
        w.WriteBoolean("isEdited", m.EditedAt is not null);
        WriteNullableTime(w, "editedAt", m.EditedAt);
        // Only on a message that was edited since it was sent (catch-up, sync): a late live change with a lower
        // position must not undo the content it carries.
        if (m.ChangeSeq is { } changeSeq)
        {
            w.WriteNumber("changeSeq", changeSeq);
        }
    });

    public static byte[] Synced(long conversationId, long afterSeq, long lastSeq, bool hasMore, long? lastChangeSeq) => Write(w =>
    {
        w.WriteString("type", "synced");
        w.WriteNumber("conversationId", conversationId);
        w.WriteNumber("afterSeq", afterSeq);
        w.WriteNumber("lastSeq", lastSeq);
        w.WriteBoolean("hasMore", hasMore);
        if (lastChangeSeq is { } changeSeq)
        {
            w.WriteNumber("lastChangeSeq", changeSeq);
        }
    });

    public static byte[] MessageEdited(long conversationId, long messageId, long seq, long senderId, string content, DateTime editedAt, long changeSeq) => Write(w =>
    {
        w.WriteString("type", "messageEdited");
        w.WriteNumber("conversationId", conversationId);
        w.WriteNumber("messageId", messageId);
        w.WriteNumber("seq", seq);
        w.WriteNumber("senderId", senderId);
        w.WriteString("content", content);
        WriteTime(w, "editedAt", editedAt);
        w.WriteNumber("changeSeq", changeSeq);
    });

    public static byte[] MessageDeleted(long conversationId, long messageId, long seq, long senderId, DateTime deletedAt, long changeSeq) => Write(w =>
    {
        w.WriteString("type", "messageDeleted");
        w.WriteNumber("conversationId", conversationId);
        w.WriteNumber("messageId", messageId);
        w.WriteNumber("seq", seq);
        w.WriteNumber("senderId", senderId);
        WriteTime(w, "deletedAt", deletedAt);
        w.WriteNumber("changeSeq", changeSeq);
    });

    /// <param name="joinedSeq">
    /// The conversation's last seq when the user joined (<c>joined_seq</c>), their read position until their first
    /// <c>read</c>: a message at or below it, which can still reach them live while the addition is applied, is
    /// not theirs to count as unread (protocol §4, §10).
    /// </param>
    public static byte[] MemberJoined(long conversationId, long userId, long joinedSeq, DateTime timestamp) => Write(w =>
    {
        WriteMember(w, conversationId, userId, "joined", timestamp);
        w.WriteNumber("joinedSeq", joinedSeq);
    });

    public static byte[] MemberLeft(long conversationId, long userId, DateTime timestamp) =>
        Write(w => WriteMember(w, conversationId, userId, "left", timestamp));

    private static void WriteMember(Utf8JsonWriter w, long conversationId, long userId, string change, DateTime timestamp)
    {
        w.WriteString("type", "member");
        w.WriteNumber("conversationId", conversationId);
        w.WriteNumber("userId", userId);
        w.WriteString("change", change);
        WriteTime(w, "timestamp", timestamp);
    }

    /// <param name="presenceStatus">The user's status as the connection went live: what its own devices had set.</param>
    public static byte[] Ready(PresenceStatus presenceStatus, IEnumerable<ReadyConversation> conversations) => Write(w =>
    {
        w.WriteString("type", "ready");
        // Before the conversations, which may run to megabytes.
        w.WriteString("presenceStatus", PresenceName(presenceStatus));
        w.WriteStartArray("conversations");
        foreach (var c in conversations)
        {
            w.WriteStartObject();
            w.WriteNumber("conversationId", c.ConversationId);
            w.WriteNumber("lastSeq", c.LastSeq);
            w.WriteNumber("unreadCount", c.UnreadCount);
            w.WriteBoolean("hasMore", c.HasMore);
            w.WriteNumber("lastChangeSeq", c.LastChangeSeq);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    });

    public static byte[] Ack(string clientMessageId, long messageId, long conversationId, long seq, DateTime timestamp) => Write(w =>
    {
        w.WriteString("type", "ack");
        w.WriteString("clientMessageId", clientMessageId);
        w.WriteNumber("messageId", messageId);
        w.WriteNumber("conversationId", conversationId);
        w.WriteNumber("seq", seq);
        WriteTime(w, "timestamp", timestamp);
    });

    public static byte[] Typing(long conversationId, long senderId, string senderName, bool isTyping, DateTime timestamp) => Write(w =>
    {
        w.WriteString("type", "typing");
        w.WriteNumber("conversationId", conversationId);
        w.WriteNumber("senderId", senderId);
        w.WriteString("senderName", senderName);
        w.WriteBoolean("isTyping", isTyping);
        WriteTime(w, "timestamp", timestamp);
    });

    /// <param name="ownCount">
    /// The reader's unread count after the move, with the conversation's last seq and change position it was taken
    /// at, for the reader's own other devices only: it is private to them, so the frame for everyone else is
    /// written without it.
    /// </param>
    public static byte[] Read(long conversationId, long messageId, long seq, long readerId, DateTime timestamp, UnreadCountAt? ownCount = null) => Write(w =>
    {
        w.WriteString("type", "read");
        w.WriteNumber("conversationId", conversationId);
        w.WriteNumber("messageId", messageId);
        w.WriteNumber("seq", seq);
        w.WriteNumber("senderId", readerId);
        WriteTime(w, "timestamp", timestamp);
        if (ownCount is { } count)
        {
            w.WriteNumber("unreadCount", count.UnreadCount);
            w.WriteNumber("lastSeq", count.LastSeq);
            w.WriteNumber("lastChangeSeq", count.LastChangeSeq);
        }
    });

    public static byte[] Presence(long userId, string displayName, PresenceStatus status, DateTime timestamp) => Write(w =>
    {
        w.WriteString("type", "presence");
        w.WriteNumber("senderId", userId);
        w.WriteString("senderName", displayName);
        w.WriteString("presenceStatus", PresenceName(status));
        WriteTime(w, "timestamp", timestamp);
    });

    public static byte[] Error(FrameError error) => Write(w =>
    {
        w.WriteString("type", "error");
        w.WriteString("code", error.Code);
        w.WriteString("message", error.Message);
        if (error.ClientMessageId is not null)
        {
            w.WriteString("clientMessageId", error.ClientMessageId);
        }
        if (error.FrameType is not null)
        {
            w.WriteString("frameType", error.FrameType);
        }
        if (error.ConversationId is { } conversationId)
        {
            w.WriteNumber("conversationId", conversationId);
        }
        if (error.MessageId is { } messageId)
        {
            w.WriteNumber("messageId", messageId);
        }
        if (error.RetryAfterMs is { } retryAfterMs)
        {
            w.WriteNumber("retryAfterMs", retryAfterMs);
        }
    });

    public static string PresenceName(PresenceStatus status) => status switch
    {
        PresenceStatus.Online => "online",
        PresenceStatus.Away => "away",
        PresenceStatus.Busy => "busy",
        PresenceStatus.Offline => "offline",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    // Each frame is written into a buffer and writer kept per thread, then copied out once at its exact size: a
    // fresh growing buffer per frame made half of the gateway's allocations under load (a message frame went
    // through 256-, 512- and 1,024-byte buffers before its copy). Writing never awaits, so a thread's buffer is
    // never shared. A buffer that grew for an unusually large frame (a long ready list) is not kept.
    private const int KeptBufferBytes = 16 * 1024;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        var writer = t_writer ??= new Utf8JsonWriter(buffer, WriterOptions);
        buffer.ResetWrittenCount();
        writer.Reset(buffer);
        try
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
            writer.Flush();
            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            if (buffer.Capacity > KeptBufferBytes)
            {
                t_buffer = null;
                t_writer = null;
            }
        }
    }

    /// <summary>ISO-8601 UTC with a Z and millisecond precision: what every client's date parser reads. The HTTP API writes times the same way.</summary>
    public static string FormatTime(DateTime time) =>
        DateTime.SpecifyKind(time.ToUniversalTime(), DateTimeKind.Utc).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static void WriteTime(Utf8JsonWriter writer, string name, DateTime time) => writer.WriteString(name, FormatTime(time));

    private static void WriteNullableTime(Utf8JsonWriter writer, string name, DateTime? time)
    {
        if (time is null)
        {
            writer.WriteNull(name);
        }
        else
        {
            WriteTime(writer, name, time.Value);
        }
    }

    private static void WriteNullableString(Utf8JsonWriter writer, string name, string? value)
    {
        if (value is null)
        {
            writer.WriteNull(name);
        }
        else
        {
            writer.WriteString(name, value);
        }
    }

    private static void WriteNullableNumber(Utf8JsonWriter writer, string name, long? value)
    {
        if (value is null)
        {
            writer.WriteNull(name);
        }
        else
        {
            writer.WriteNumber(name, value.Value);
        }
    }
}

public readonly record struct ReadyConversation(long ConversationId, long LastSeq, int UnreadCount, bool HasMore, long LastChangeSeq);

/// <summary>A user's unread count in a conversation, and the conversation's last seq and change position when it was taken.</summary>
public readonly record struct UnreadCountAt(int UnreadCount, long LastSeq, long LastChangeSeq);
