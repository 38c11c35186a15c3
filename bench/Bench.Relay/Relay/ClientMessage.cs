using System.Text.Json;

namespace Bench.Relay.Relay;

/// <summary>
/// The three fields the relay needs from a client <c>message</c> frame, read with a forward-only reader: no
/// document, no validation beyond what routing needs. That is the point of a ceiling.
/// </summary>
internal readonly record struct ClientMessage(long ConversationId, string ClientMessageId, string Content)
{
    public static bool TryRead(ReadOnlySpan<byte> json, out ClientMessage message)
    {
        message = default;
        var reader = new Utf8JsonReader(json);
        bool isMessage = false;
        long conversationId = 0;
        string? clientMessageId = null, content = null;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("type"u8))
                {
                    reader.Read();
                    isMessage = reader.ValueTextEquals("message"u8);
                }
                else if (reader.ValueTextEquals("conversationId"u8))
                {
                    reader.Read();
                    reader.TryGetInt64(out conversationId);
                }
                else if (reader.ValueTextEquals("clientMessageId"u8))
                {
                    reader.Read();
                    clientMessageId = reader.GetString();
                }
                else if (reader.ValueTextEquals("content"u8))
                {
                    reader.Read();
                    content = reader.GetString();
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return false;
        }
        if (!isMessage || conversationId <= 0 || content is null)
        {
            return false;
        }
        message = new ClientMessage(conversationId, clientMessageId ?? "srv-" + Guid.NewGuid().ToString("N"), content);
        return true;
    }
}
