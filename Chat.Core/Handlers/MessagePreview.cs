namespace Chat.Core.Handlers;

/// <summary>The conversation list's one-line preview of a message.</summary>
public static class MessagePreview
{
    public const int MaxLength = 100;

    /// <summary>The content itself when it fits in 100 characters, else its first 97 and "...", never cutting a surrogate pair in two.</summary>
    public static string Of(string content)
    {
        if (content.Length <= MaxLength)
        {
            return content;
        }
        var cut = MaxLength - 3;
        if (char.IsHighSurrogate(content[cut - 1]))
        {
            cut--;
        }
        return string.Concat(content.AsSpan(0, cut), "...");
    }
}
