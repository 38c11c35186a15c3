using System.Buffers;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Bench.Relay.Relay;

/// <summary>Server frames shaped as the gateway's (docs/protocol.md §6), each serialized once to UTF-8.</summary>
internal static class RelayFrames
{
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static byte[] Welcome(long userId, string name) => Write(w =>
    {
        w.WriteString("type", "welcome");
        w.WriteNumber("userId", userId);
        w.WriteString("externalId", userId.ToString(CultureInfo.InvariantCulture));
        w.WriteString("displayName", name);
        WriteTime(w, "serverTime", DateTime.UtcNow);
    });

    public static byte[] Ready(IEnumerable<ReadyEntry> conversations) => Write(w =>
    {
        w.WriteString("type", "ready");
        w.WriteStartArray("conversations");
        foreach (var c in conversations)
        {
            w.WriteStartObject();
            w.WriteNumber("conversationId", c.ConversationId);
            w.WriteNumber("lastSeq", c.LastSeq);
            w.WriteNumber("unreadCount", 0);
            w.WriteBoolean("hasMore", false);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    });

    public static byte[] Message(ClientMessage m, long messageId, long seq, RelayConnection sender, DateTime timestamp) => Write(w =>
    {
        w.WriteString("type", "message");
        w.WriteNumber("conversationId", m.ConversationId);
        w.WriteNumber("messageId", messageId);
        w.WriteNumber("seq", seq);
        w.WriteNumber("senderId", sender.UserId);
        w.WriteString("senderName", sender.Name);
        w.WriteNull("senderAvatarUrl");
        w.WriteString("content", m.Content);
        w.WriteString("messageType", "text");
        w.WriteNull("replyToMessageId");
        w.WriteNull("mediaUrl");
        WriteTime(w, "timestamp", timestamp);
        w.WriteString("clientMessageId", m.ClientMessageId);
        w.WriteBoolean("isCatchup", false);
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

    public static byte[] Error(string code, string message, string clientMessageId) => Write(w =>
    {
        w.WriteString("type", "error");
        w.WriteString("code", code);
        w.WriteString("message", message);
        w.WriteString("clientMessageId", clientMessageId);
    });

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, Options))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteTime(Utf8JsonWriter writer, string name, DateTime time) =>
        writer.WriteString(name, time.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
}
