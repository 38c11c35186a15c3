using System.Globalization;
using System.Text.Json;

namespace Chat.Cli.Client;

/// <summary>How conversations and messages read in a terminal, shared by the wrappers and <c>connect</c>.</summary>
internal static class Display
{
    private const int PreviewLength = 48;

    /// <summary>The title, or for an untitled conversation the names of the members other than <paramref name="me"/>.</summary>
    public static string Label(JsonElement conversation, long? me = null)
    {
        if (conversation.Str("title") is { Length: > 0 } title)
        {
            return title;
        }
        var others = conversation.Items("members").Where(m => m.Long("userId") != me).Select(Name).ToList();
        return others.Count > 0 ? string.Join(", ", others) : $"conversation {conversation.Long("conversationId")}";
    }

    public static string Name(JsonElement member) => member.Str("displayName") ?? member.Str("externalId") ?? $"user {member.Long("userId")}";

    public static string Kind(JsonElement conversation) => conversation.Bool("isGroup") == true ? "group" : "direct";

    public static string Members(JsonElement conversation) => string.Join(", ", conversation.Items("members").Select(Name));

    /// <summary>A history item or a <c>message</c> frame: <c>#7  2025-06-01 09:30:01  Alice: Hello (edited)</c>.</summary>
    public static string Message(JsonElement message)
    {
        var text = message.Bool("isDeleted") == true ? "(deleted)" : message.Str("content") ?? "";
        if (message.Str("mediaUrl") is { } media)
        {
            text += $" [{message.Str("messageType")}: {media}]";
        }
        if (message.Bool("isEdited") == true && message.Bool("isDeleted") != true)
        {
            text += " (edited)";
        }
        return Line(message.Long("seq"), message.Time("timestamp"), message.Str("senderName") ?? $"user {message.Long("senderId")}", text);
    }

    public static string Line(long? seq, string time, string sender, string text) => $"#{seq}  {time}  {sender}: {text}";

    public static string Preview(string? text) =>
        text is null ? "" : text.Length <= PreviewLength ? text : string.Concat(text.AsSpan(0, PreviewLength - 1), "…");

    /// <summary>Writes rows as columns separated by two spaces, each as wide as its widest cell.</summary>
    public static void Table(TextWriter output, IReadOnlyList<string[]> rows)
    {
        var widths = Enumerable.Range(0, rows[0].Length).Select(i => rows.Max(r => r[i].Length)).ToArray();
        foreach (var row in rows)
        {
            output.WriteLine(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd());
        }
    }

    public static string Number(long? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "-";
}
