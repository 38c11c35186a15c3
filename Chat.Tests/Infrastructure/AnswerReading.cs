using System.Text.Json;

namespace Chat.Tests.Infrastructure;

/// <summary>Reading a client's answer (<c>ack</c> or <c>error</c>) to a message it sent, by its client message id.</summary>
public static class AnswerReading
{
    /// <summary>The answer; frames before it are dropped.</summary>
    public static Task<JsonElement> AnswerAsync(this ChatTestClient client, string clientMessageId) =>
        client.NextAsync(f => IsAnswer(f, clientMessageId));

    /// <summary>Every frame up to and including the answer, which comes last: nothing the client received is lost.</summary>
    public static async Task<List<JsonElement>> ReadThroughAnswerAsync(this ChatTestClient client, string clientMessageId)
    {
        var frames = new List<JsonElement>();
        while (true)
        {
            var frame = await client.NextAsync();
            frames.Add(frame);
            if (IsAnswer(frame, clientMessageId))
            {
                return frames;
            }
        }
    }

    private static bool IsAnswer(JsonElement frame, string clientMessageId) =>
        frame.Type() is "ack" or "error" && frame.Str("clientMessageId") == clientMessageId;
}
