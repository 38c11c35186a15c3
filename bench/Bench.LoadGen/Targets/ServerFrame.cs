using System.Text.Json;
using Bench.LoadGen.Measurement;

namespace Bench.LoadGen.Targets;

internal enum ServerFrameType
{
    Other,
    Ready,
    Message,
    Ack,
    Error,
}

/// <summary>
/// What the generator needs from a server frame of docs/protocol.md: its type, and for messages, acks and errors
/// the conversation, the seq and the stamp. Read with a forward-only reader, without building a document, so
/// that reading tens of thousands of deliveries a second stays cheap beside the server under test.
/// </summary>
internal readonly record struct ServerFrame(ServerFrameType Type, long ConversationId, long Seq, Stamp Stamp, bool HasStamp, bool IsCatchup)
{
    public static ServerFrame Parse(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        var type = ServerFrameType.Other;
        long conversationId = 0, seq = 0;
        Stamp stamp = default;
        bool hasStamp = false, isCatchup = false;
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return default;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                type = reader.ValueTextEquals("message"u8) ? ServerFrameType.Message
                    : reader.ValueTextEquals("ack"u8) ? ServerFrameType.Ack
                    : reader.ValueTextEquals("ready"u8) ? ServerFrameType.Ready
                    : reader.ValueTextEquals("error"u8) ? ServerFrameType.Error
                    : ServerFrameType.Other;
            }
            else if (reader.ValueTextEquals("conversationId"u8))
            {
                reader.Read();
                reader.TryGetInt64(out conversationId);
            }
            else if (reader.ValueTextEquals("seq"u8))
            {
                reader.Read();
                reader.TryGetInt64(out seq);
            }
            else if (reader.ValueTextEquals("content"u8))
            {
                // Deliveries: the stamp opens the content. It is ASCII, so the raw bytes need no unescaping.
                reader.Read();
                if (reader.TokenType == JsonTokenType.String && Stamp.TryParse(reader.ValueSpan, out var fromContent))
                {
                    stamp = fromContent;
                    hasStamp = true;
                }
            }
            else if (reader.ValueTextEquals("clientMessageId"u8))
            {
                // Acks and errors: the stamp is in the key. A message carries both; they agree.
                reader.Read();
                if (!hasStamp && reader.TokenType == JsonTokenType.String && Stamp.TryParseClientMessageId(reader.ValueSpan, out var fromKey))
                {
                    stamp = fromKey;
                    hasStamp = true;
                }
            }
            else if (reader.ValueTextEquals("isCatchup"u8))
            {
                reader.Read();
                isCatchup = reader.TokenType == JsonTokenType.True;
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        return new ServerFrame(type, conversationId, seq, stamp, hasStamp, isCatchup);
    }
}
