using System.Globalization;
using System.Text;
using System.Text.Json;
using Chat.Core.Protocol;
using Chat.Data.Messages;
using CsCheck;

namespace Chat.Tests.Hardening;

/// <summary>
/// The frame reader against generated input: whatever bytes or JSON arrive, it answers with exactly one frame
/// or one error, never throws, and never hands a handler a frame that breaks the protocol's rules.
/// </summary>
public sealed class FrameReaderPropertyTests
{
    private const int MaxContentLength = 4000;
    private static readonly FrameReader Reader = new(MaxContentLength);

    private static readonly string[] FieldNames =
        ["type", "conversationId", "clientMessageId", "content", "messageType", "replyToMessageId", "mediaUrl", "isTyping", "messageId", "presenceStatus", "extra"];

    private static readonly string[] TypeNames = ["message", "typing", "read", "presence", "sync", "", "MESSAGE", "message\u0000"];

    // Numbers as they appear on the wire, the awkward ones included: beyond 64 bits, fractions, exponents, negatives.
    private static readonly Gen<string> NumberToken = Gen.OneOf(
        Gen.Long.Select(n => n.ToString(CultureInfo.InvariantCulture)),
        Gen.Long[1, 1000].Select(n => n.ToString(CultureInfo.InvariantCulture)),
        Gen.Double.Where(double.IsFinite).Select(d => d.ToString("R", CultureInfo.InvariantCulture)),
        Gen.OneOf("0", "-0", "1e400", "-1e400", "1.5", "1E2", "9223372036854775808", "99999999999999999999999999", "0.0000001", "-9223372036854775808", new string('9', 500)));

    // Any UTF-16 text, lone surrogates and NUL included, written as a JSON string either escaped or raw.
    private static readonly Gen<string> StringToken = Gen.OneOf(
        Gen.String.Select(s => JsonSerializer.Serialize(s)),
        Gen.String[Gen.Char, 0, 20].Select(s => "\"" + string.Concat(s.Select(c => c is '"' or '\\' || c < ' ' ? $"\\u{(int)c:x4}" : c.ToString())) + "\""),
        Gen.OneOf("\"\\ud800\"", "\"a\\udc00b\"", "\"\\u0000\"", "\"<script>alert(1)</script>\"", "\"'; DROP TABLE messages; --\"", "\"https://example.com/x.png\"", "\"javascript:alert(1)\""),
        Gen.Const(() => JsonSerializer.Serialize(new string('x', MaxContentLength + 1))));

    private static readonly Gen<string> ScalarToken = Gen.Frequency(
        (3, NumberToken),
        (3, StringToken),
        (1, Gen.OneOf("true", "false", "null")));

    private static readonly Gen<string> JsonValue = Gen.Recursive<string>((depth, value) =>
        depth >= 4
            ? ScalarToken
            : Gen.Frequency(
                (4, ScalarToken),
                (1, value.Array[0, 4].Select(items => "[" + string.Join(',', items) + "]")),
                (1, Gen.Select(StringToken, value).Array[0, 4].Select(pairs => "{" + string.Join(',', pairs.Select(p => p.Item1 + ":" + p.Item2)) + "}"))));

    // Objects shaped like frames, so that most samples get past the parser and exercise every field rule.
    private static readonly Gen<string> FrameLike = Gen.Select(
        Gen.OneOf(TypeNames).Select(t => JsonSerializer.Serialize(t)),
        Gen.Select(Gen.OneOf(FieldNames), JsonValue).Array[0, 8],
        (type, fields) => "{\"type\":" + type + string.Concat(fields.Select(f => "," + JsonSerializer.Serialize(f.Item1) + ":" + f.Item2)) + "}");

    internal static readonly Gen<string> AnyJson = Gen.Frequency((3, FrameLike), (1, JsonValue));

    [Test]
    public void Arbitrary_bytes_never_throw_and_never_yield_a_malformed_frame()
    {
        long tried = 0;
        Gen.Byte.Array[0, 400].Sample(bytes =>
        {
            Interlocked.Increment(ref tried);
            CheckWellFormed(Reader.Read(bytes));
        }, iter: 20_000);
        ReliabilityReport.Ledger.BadInput("frame reader: arbitrary bytes (property test)", tried);
    }

    [Test]
    public void Arbitrary_JSON_never_throws_and_never_yields_a_malformed_frame()
    {
        long tried = 0, frames = 0;
        AnyJson.Sample(json =>
        {
            Interlocked.Increment(ref tried);
            var result = Reader.Read(Encoding.UTF8.GetBytes(json));
            CheckWellFormed(result);
            if (result.Frame is not null)
            {
                Interlocked.Increment(ref frames);
            }
        }, iter: 20_000);

        Assert.That(frames, Is.Positive, "the generator reaches valid frames too, not only errors");
        ReliabilityReport.Ledger.BadInput("frame reader: arbitrary JSON, mostly frame-shaped (property test)", tried - frames);
    }

    // Valid text: no NUL and no lone surrogate, but anything else, astral characters included.
    private static readonly Gen<string> ValidText = Gen.OneOf(
            Gen.Char.Where(c => c != '\0' && !char.IsSurrogate(c)).Select(c => c.ToString()),
            Gen.Int[0x10000, 0x10FFFF].Select(char.ConvertFromUtf32))
        .Array[1, 60].Select(string.Concat);

    [Test]
    public void A_message_written_by_the_server_reads_back_as_the_same_message()
    {
        var gen = Gen.Select(
            Gen.Long[1, long.MaxValue],
            ValidText.Where(s => s.Length <= FrameReader.MaxClientMessageIdLength),
            ValidText,
            Gen.OneOf("text", "image", "file"),
            Gen.Frequency((1, Gen.Const<long?>(default(long?))), (3, Gen.Long[1, long.MaxValue].Select(x => (long?)x))),
            Gen.OneOf<string?>(null, "https://files.example.com/a.png", "http://x.example/y?z=1#f"));
        long tried = 0;
        gen.Sample((conversationId, key, content, messageType, replyTo, mediaUrl) =>
        {
            Interlocked.Increment(ref tried);
            var written = FrameWriter.Message(new StoredMessage
            {
                MessageId = 1, ConversationId = conversationId, Seq = 1, SenderId = 1, SenderName = "s",
                Content = content, MessageType = messageType, ReplyToMessageId = replyTo, MediaUrl = mediaUrl,
                ClientMessageId = key, CreatedAt = DateTime.UtcNow,
            }, isCatchup: false);
            var read = Reader.Read(written).Frame as SendMessageFrame;
            return read == new SendMessageFrame(conversationId, key, content, messageType, replyTo, mediaUrl);
        }, iter: 5_000);
        ReliabilityReport.Ledger.BadInput("frame writer to reader round trips (property test)", tried);
    }

    [Test]
    public void Typing_read_and_presence_written_by_the_server_read_back_unchanged()
    {
        var gen = Gen.Select(Gen.Long[1, long.MaxValue], Gen.Long[1, long.MaxValue], Gen.Bool, Gen.Enum<PresenceStatus>());
        gen.Sample((conversationId, messageId, isTyping, status) =>
            Reader.Read(FrameWriter.Typing(conversationId, 7, "n", isTyping, DateTime.UtcNow)).Frame == new TypingFrame(conversationId, isTyping)
            && Reader.Read(FrameWriter.Read(conversationId, messageId, 3, 7, DateTime.UtcNow)).Frame == new ReadFrame(conversationId, messageId)
            && Reader.Read(FrameWriter.Presence(7, "n", status, DateTime.UtcNow)).Frame == new PresenceFrame(status),
            iter: 2_000);
    }

    /// <summary>Exactly one of frame or error; a frame keeps every rule a handler relies on.</summary>
    private static void CheckWellFormed(FrameReadResult result)
    {
        if ((result.Frame is null) == (result.Error is null))
        {
            throw new InvalidOperationException("a read must give exactly one frame or one error");
        }
        if (result.Error is { } error)
        {
            if (error.Code is not (ErrorCodes.BadRequest or ErrorCodes.UnknownType) || string.IsNullOrEmpty(error.Message))
            {
                throw new InvalidOperationException($"unexpected error {error}");
            }
            return;
        }
        var ok = result.Frame switch
        {
            SendMessageFrame m => m.ConversationId > 0
                && m.ClientMessageId.Length is > 0 and <= FrameReader.MaxClientMessageIdLength && FrameReader.IsValidText(m.ClientMessageId)
                && m.Content.Length is > 0 and <= MaxContentLength && FrameReader.IsValidText(m.Content)
                && m.MessageType is "text" or "image" or "file"
                && m.ReplyToMessageId is null or > 0
                && (m.MediaUrl is null || (m.MediaUrl.Length <= FrameReader.MaxMediaUrlLength && FrameReader.IsValidText(m.MediaUrl)
                    && Uri.TryCreate(m.MediaUrl, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")),
            TypingFrame t => t.ConversationId > 0,
            ReadFrame r => r.ConversationId > 0 && r.MessageId > 0,
            PresenceFrame p => Enum.IsDefined(p.Status),
            _ => false,
        };
        if (!ok)
        {
            throw new InvalidOperationException($"malformed frame reached the handlers: {result.Frame}");
        }
    }
}
