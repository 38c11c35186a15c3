namespace Chat.Core.Protocol;

/// <summary>
/// What a one-line name that other users see may hold: a conversation's title, a user's display name (a token's
/// <c>name</c>) and an external id (<see cref="Auth.ExternalIds"/>). Message content is free text and is not held
/// to it.
/// </summary>
public static class LabelText
{
    public const string ControlRule = "must not hold control characters";

    public const string BidiRule = "must not hold bidirectional control characters (U+202A to U+202E, U+2066 to U+2069)";

    /// <summary>
    /// Why <paramref name="value"/> is not a label, as the end of a sentence that names it; null when it is one.
    /// Valid text (no NUL, no unpaired surrogate) is checked by the caller first, with its own message.
    /// </summary>
    /// <remarks>
    /// A label is shown on one line among others (a conversation list, "Alice: See you", a member list): a line
    /// break or a tab breaks that layout, and an escape or other C0/C1 control goes as it is into terminals and log
    /// lines. An embedding, override or isolate character reorders the text after it, and a client that does not
    /// isolate each label carries that past the label's end: a name ending in U+202E shows the message beside it
    /// backwards, and "\u202Egnp.exe" reads as "exe.png". Right-to-left text needs none of them (the letters carry
    /// their direction, and U+200E / U+200F marks, which reorder nothing, stay allowed).
    /// </remarks>
    public static string? Problem(string value) =>
        value.Any(char.IsControl) ? ControlRule
        : value.Any(IsBidiControl) ? BidiRule
        : null;

    private static bool IsBidiControl(char c) => c is (>= '\u202A' and <= '\u202E') or (>= '\u2066' and <= '\u2069');
}
