using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;

namespace Chat.Core.Protocol;

/// <summary>
/// A JSON string encoder that escapes only what JSON requires: the quote, the backslash and the control
/// characters below U+0020. Everything else, non-ASCII, emoji and HTML characters included, is written as typed.
/// </summary>
/// <remarks>
/// The framework's most relaxed encoder (<see cref="JavaScriptEncoder.UnsafeRelaxedJsonEscaping"/>) still writes
/// every character outside the Basic Multilingual Plane (emoji) and some inside it (U+007F to U+00A0, U+2028,
/// U+2029) as <c>\u</c> escapes, although JSON allows them raw. An unpaired surrogate is not text: it is never
/// written as it is but replaced by U+FFFD, as the framework's encoders do (the reader, the HTTP API and the token
/// check let none in, and PostgreSQL cannot store one, so none should reach a frame).
/// Stateless and shared by every thread's writer; it allocates nothing.
/// </remarks>
public sealed class JsonTextEncoder : JavaScriptEncoder
{
    public static readonly JsonTextEncoder Instance = new();

    // What a search stops at: what must be escaped, and every surrogate, so that a lone one is caught. A stop at
    // a well-formed pair goes on past it.
    private static readonly SearchValues<char> Stops = SearchValues.Create(
        string.Concat(Enumerable.Range(0, 0x20).Select(c => (char)c)) + "\"\\" +
        string.Concat(Enumerable.Range(0xD800, 0x800).Select(c => (char)c)));

    private JsonTextEncoder()
    {
    }

    // \uXXXX
    public override int MaxOutputCharactersPerInputCharacter => 6;

    public override bool WillEncode(int unicodeScalar) =>
        unicodeScalar is < 0x20 or '"' or '\\' || (uint)(unicodeScalar - 0xD800) <= 0x7FF;

    public override unsafe int FindFirstCharacterToEncode(char* text, int textLength)
    {
        var span = new ReadOnlySpan<char>(text, textLength);
        var offset = 0;
        while (true)
        {
            var found = span[offset..].IndexOfAny(Stops);
            if (found < 0)
            {
                return -1;
            }
            var index = offset + found;
            if (char.IsHighSurrogate(span[index]) && index + 1 < span.Length && char.IsLowSurrogate(span[index + 1]))
            {
                offset = index + 2;
                continue;
            }
            return index;
        }
    }

    public override unsafe bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten)
    {
        var destination = new Span<char>(buffer, bufferLength);
        ReadOnlySpan<char> shortEscape = unicodeScalar switch
        {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\b' => "\\b",
            '\f' => "\\f",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            _ => "",
        };
        if (!shortEscape.IsEmpty)
        {
            numberOfCharactersWritten = shortEscape.TryCopyTo(destination) ? shortEscape.Length : 0;
            return numberOfCharactersWritten > 0;
        }
        if (WillEncode(unicodeScalar))
        {
            return destination.TryWrite(CultureInfo.InvariantCulture, $"\\u{unicodeScalar:X4}", out numberOfCharactersWritten);
        }
        // Not ours to escape (U+FFFD in place of a lone surrogate, when the framework asks): written as it is.
        return new Rune(unicodeScalar).TryEncodeToUtf16(destination, out numberOfCharactersWritten);
    }
}
