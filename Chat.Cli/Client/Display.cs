using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Chat.Cli.Client;

/// <summary>How conversations and messages read in a terminal, shared by the wrappers and <c>connect</c>.</summary>
internal static class Display
{
    private const int PreviewLength = 48;

    /// <summary>How many members' names an untitled conversation's label shows.</summary>
    private const int LabelNames = 3;

    /// <summary>The title, or for an untitled conversation the names of the members other than <paramref name="me"/>.</summary>
    public static string Label(JsonElement conversation, long? me = null)
    {
        if (conversation.Str("title") is { Length: > 0 } title)
        {
            return Safe(title);
        }
        var others = conversation.Items("members").Where(m => m.Long("userId") != me).Select(Name).ToList();
        if (others.Count == 0)
        {
            return $"conversation {conversation.Long("conversationId")}";
        }
        // A label, not a roster: three names, and how many more (the list carries only the first members).
        var more = (conversation.Long("memberCount") ?? others.Count + 1) - 1 - Math.Min(others.Count, LabelNames);
        return string.Join(", ", others.Take(LabelNames)) + (more > 0 ? $" and {more} more" : "");
    }

    public static string Name(JsonElement member) => Safe(member.Str("displayName") ?? member.Str("externalId") ?? $"user {member.Long("userId")}");

    public static string Kind(JsonElement conversation) => conversation.Bool("isGroup") == true ? "group" : "direct";

    /// <summary>The members' names; a conversation of the list carries only its first few, and says how many more there are.</summary>
    public static string Members(JsonElement conversation)
    {
        var names = conversation.Items("members").Select(Name).ToList();
        var more = (conversation.Long("memberCount") ?? names.Count) - names.Count;
        return string.Join(", ", names) + (more > 0 ? $" and {more} more" : "");
    }

    /// <summary>A history item or a <c>message</c> frame: <c>#7  2025-06-01 09:30:01  Alice: Hello (edited)</c>.</summary>
    /// <param name="self">The user of this terminal, whose messages show as "you", from any device and in history alike.</param>
    public static string Message(JsonElement message, long? self = null)
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
        var sender = self is not null && message.Long("senderId") == self ? "you" : message.Str("senderName") ?? $"user {message.Long("senderId")}";
        return Line(message.Long("seq"), message.Time("timestamp"), sender, text);
    }

    public static string Line(long? seq, string time, string sender, string text) => $"#{seq}  {time}  {Safe(sender)}: {Safe(text)}";

    /// <summary>A conversation's last visible message as a list shows it: <c>Alice: See you</c>, <c>you: See you</c>.</summary>
    public static string LastMessage(JsonElement conversation, long? self = null)
    {
        if (conversation.Str("lastMessagePreview") is not { } preview)
        {
            return "";
        }
        var senderId = conversation.Long("lastMessageSenderId");
        var sender = self is not null && senderId == self ? "you" : conversation.Str("lastMessageSenderName") ?? (senderId is null ? null : $"user {senderId}");
        return sender is null ? Preview(preview) : $"{Safe(sender)}: {Preview(preview)}";
    }

    public static string Preview(string? text)
    {
        if (text is null)
        {
            return "";
        }
        if (text.Length <= PreviewLength)
        {
            return Safe(text);
        }
        // Never half of a surrogate pair (an emoji): alone it is not text, and a terminal shows it as garbage.
        var cut = char.IsHighSurrogate(text[PreviewLength - 2]) ? PreviewLength - 2 : PreviewLength - 1;
        return Safe(string.Concat(text.AsSpan(0, cut), "…"));
    }

    /// <summary>
    /// Text that other users wrote (messages, names, titles), made safe to print: control characters (line breaks,
    /// terminal escape sequences, the bell) and the bidirectional overrides are shown as <c>\n</c>, <c>\u001b</c>
    /// and so on, so that a message cannot forge a line that looks like someone else's, recolour or retitle the
    /// terminal, or reorder what is shown. <c>--json</c> output stays as the gateway sent it.
    /// </summary>
    public static string Safe(string text)
    {
        if (!text.Any(MustEscape))
        {
            return text;
        }
        var safe = new StringBuilder(text.Length + 16);
        foreach (var c in text)
        {
            if (!MustEscape(c))
            {
                safe.Append(c);
                continue;
            }
            safe.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ => $"\\u{(int)c:x4}",
            });
        }
        return safe.ToString();
    }

    private static bool MustEscape(char c) => char.IsControl(c) || c is >= '\u202a' and <= '\u202e' or >= '\u2066' and <= '\u2069';

    /// <summary>Writes rows as columns separated by two spaces, each as wide as its widest cell.</summary>
    public static void Table(TextWriter output, IReadOnlyList<string[]> rows)
    {
        var widths = Enumerable.Range(0, rows[0].Length).Select(i => rows.Max(r => Width(r[i]))).ToArray();
        foreach (var row in rows)
        {
            output.WriteLine(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell + new string(' ', widths[i] - Width(cell)))).TrimEnd());
        }
    }

    /// <summary>
    /// The columns a terminal gives <paramref name="text"/>: two for each wide character (CJK ideographs, kana,
    /// Hangul, full-width forms, most emoji), none for a combining mark or a format character, one for the rest.
    /// A title in Japanese would otherwise push every column after it out of line.
    /// </summary>
    public static int Width(string text)
    {
        var width = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            width += CharUnicodeInfo.GetUnicodeCategory(rune.Value) switch
            {
                UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format => 0,
                _ when IsWide(rune.Value) => 2,
                _ => 1,
            };
        }
        return width;
    }

    // The East Asian Wide and Fullwidth blocks (Unicode UAX #11), and the emoji blocks terminals draw two columns wide.
    private static bool IsWide(int c) =>
        c is (>= 0x1100 and <= 0x115F) or (>= 0x2E80 and <= 0x303E) or (>= 0x3041 and <= 0x33FF) or (>= 0x3400 and <= 0x4DBF)
            or (>= 0x4E00 and <= 0x9FFF) or (>= 0xA000 and <= 0xA4CF) or (>= 0xAC00 and <= 0xD7A3) or (>= 0xF900 and <= 0xFAFF)
            or (>= 0xFE30 and <= 0xFE4F) or (>= 0xFF00 and <= 0xFF60) or (>= 0xFFE0 and <= 0xFFE6)
            or (>= 0x1F300 and <= 0x1F64F) or (>= 0x1F680 and <= 0x1F6FF) or (>= 0x1F900 and <= 0x1FAFF) or (>= 0x20000 and <= 0x3FFFD);

    public static string Number(long? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "-";
}
