using System.Text.Json;

namespace Chat.Core.Protocol;

/// <summary>
/// Turns one text message into a <see cref="ClientFrame"/> or a <see cref="FrameError"/>. It never throws on
/// bad input: malformed JSON, a non-object, a missing or unknown type and wrong field types all come back as
/// errors that name the problem, so a handler only ever sees a well-formed frame.
/// </summary>
public sealed class FrameReader(int maxContentLength)
{
    public const int MaxClientMessageIdLength = 64;
    public const int MaxMediaUrlLength = LinkUrls.MaxLength;

    // Deep nesting is refused by the parser itself rather than walked. A property given twice is refused too: which
    // of the two counts would otherwise be the parser's choice ({"type":"message","type":"typing"} read as typing).
    // The parser checks that without allocating; a frame it refuses is read again with repeats allowed, to say which.
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 32, AllowDuplicateProperties = false };
    private static readonly JsonDocumentOptions RepeatsAllowed = DocumentOptions with { AllowDuplicateProperties = true };

    private const string KnownTypes = "message, typing, read, presence, sync, edit or delete";

    public FrameReadResult Read(ReadOnlyMemory<byte> utf8Json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8Json, DocumentOptions);
        }
        catch (JsonException e)
        {
            return RepeatedProperty(utf8Json) ?? Fail(ErrorCodes.BadRequest, $"Malformed JSON: {e.Message}");
        }
        catch (InvalidOperationException)
        {
            // Looking for repeated properties compares their names, and a name that holds an escaped lone surrogate
            // ("\ud800") cannot be compared.
            return NameNotValidText;
        }

        using (document)
        {
            try
            {
                return ReadFrame(document.RootElement);
            }
            catch (InvalidOperationException)
            {
                // The parser accepts an escaped lone surrogate ("\ud800") anywhere, but comparing or decoding a
                // property name that holds one throws: such a frame is not text, whatever its shape.
                return NameNotValidText;
            }
        }
    }

    /// <summary>
    /// The error for a frame refused only for a repeated property, naming what the frame's other errors name (its
    /// type, and the conversation, message and key its type defines) except the fields it repeats, since then it is
    /// not known which was meant; null when the frame is malformed for another reason.
    /// </summary>
    private static FrameReadResult? RepeatedProperty(ReadOnlyMemory<byte> utf8Json)
    {
        try
        {
            using var document = JsonDocument.Parse(utf8Json, RepeatsAllowed);
            var root = document.RootElement;
            if (RepeatedProperties.In(root) is not { } repeated)
            {
                return null;
            }
            var message = $"The frame has the property \"{Truncate(repeated)}\" more than once; each may appear once.";
            var repeatedAtTop = RepeatedProperties.AtTopLevel(root);
            if (root.ValueKind != JsonValueKind.Object || repeatedAtTop.Contains("type")
                || !root.TryGetProperty("type", out var typeElement) || SafeString(typeElement) is not { } type || !IsKnownType(type))
            {
                return Fail(ErrorCodes.BadRequest, message);
            }
            var clientMessageId = type == "message" && !repeatedAtTop.Contains("clientMessageId") ? ClientMessageIdOf(root) : null;
            return new FrameReadResult(About(root, type, clientMessageId, message, except: repeatedAtTop));
        }
        catch (JsonException)
        {
            return null;
        }
        catch (InvalidOperationException)
        {
            // A repeat, and a property name that is not text either.
            return NameNotValidText;
        }
    }

    private static FrameReadResult NameNotValidText => Fail(ErrorCodes.BadRequest, "Malformed JSON: a property name is not valid text.");

    private FrameReadResult ReadFrame(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return Fail(ErrorCodes.BadRequest, "A frame must be a JSON object.");
        }

        if (!root.TryGetProperty("type", out var typeElement) || typeElement.ValueKind != JsonValueKind.String)
        {
            return Fail(ErrorCodes.BadRequest, "The frame has no \"type\" string.");
        }

        var type = SafeString(typeElement);
        // Read before the other fields so that every later error can name the message it refers to. Only a message
        // has a key: on any other frame, or on one of no known type, the field means nothing to the server, and an
        // error names only what its frame's type defines.
        string? clientMessageId = type == "message" ? ClientMessageIdOf(root) : null;

        try
        {
            return type switch
            {
                "message" => ReadMessage(root, clientMessageId),
                "typing" => new FrameReadResult(new TypingFrame(RequiredId(root, "conversationId"), OptionalBool(root, "isTyping") ?? true)),
                "read" => new FrameReadResult(new ReadFrame(RequiredId(root, "conversationId"), RequiredId(root, "messageId"))),
                "presence" => new FrameReadResult(new PresenceFrame(ReadPresence(root))),
                "sync" => new FrameReadResult(ReadSync(root)),
                "edit" => new FrameReadResult(new EditFrame(RequiredId(root, "conversationId"), RequiredId(root, "messageId"), ReadContent(root))),
                "delete" => new FrameReadResult(new DeleteFrame(RequiredId(root, "conversationId"), RequiredId(root, "messageId"))),
                null => Fail(ErrorCodes.BadRequest, "type is not valid text."),
                var other => Fail(ErrorCodes.UnknownType, $"Unknown frame type \"{Truncate(other)}\"; expected {KnownTypes}."),
            };
        }
        catch (FieldException e)
        {
            // Only the known types throw.
            return new FrameReadResult(About(root, type!, clientMessageId, e.Message));
        }
    }

    private static bool IsKnownType(string type) => type is "message" or "typing" or "read" or "presence" or "sync" or "edit" or "delete";

    private static string? ClientMessageIdOf(JsonElement root) =>
        root.TryGetProperty("clientMessageId", out var idElement) && idElement.ValueKind == JsonValueKind.String ? SafeString(idElement) : null;

    /// <summary>
    /// A bad_request about a frame of a known type: it names the frame and whatever valid target it has, as the
    /// handlers' errors do, but not the fields in <paramref name="except"/>. A target is named only when the frame's type
    /// has one: a presence frame that happens to carry a conversationId is not about that conversation.
    /// </summary>
    private static FrameError About(JsonElement root, string type, string? clientMessageId, string message, IReadOnlySet<string>? except = null) =>
        new(ErrorCodes.BadRequest, message, clientMessageId)
        {
            FrameType = type,
            ConversationId = type is "message" or "typing" or "read" or "sync" or "edit" or "delete" && except?.Contains("conversationId") != true ? ValidIdOrNull(root, "conversationId") : null,
            MessageId = type is "read" or "edit" or "delete" && except?.Contains("messageId") != true ? ValidIdOrNull(root, "messageId") : null,
        };

    private static long? ValidIdOrNull(JsonElement root, string name) =>
        root.TryGetProperty(name, out var element) && element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out var id) && id > 0
            ? id
            : null;

    private FrameReadResult ReadMessage(JsonElement root, string? clientMessageId)
    {
        var conversationId = RequiredId(root, "conversationId");

        if (root.TryGetProperty("clientMessageId", out var idElement) && idElement.ValueKind != JsonValueKind.Null)
        {
            if (idElement.ValueKind != JsonValueKind.String)
            {
                throw new FieldException("clientMessageId must be a string.");
            }
            if (clientMessageId is null || clientMessageId.Length is 0 or > MaxClientMessageIdLength || !IsValidText(clientMessageId))
            {
                throw new FieldException($"clientMessageId must be 1 to {MaxClientMessageIdLength} characters of valid text.");
            }
        }
        else
        {
            // The server makes the key for clients that send none; such a message cannot be retried safely.
            clientMessageId = "srv-" + Guid.NewGuid().ToString("N");
        }

        var content = ReadContent(root);

        var messageType = OptionalString(root, "messageType") ?? "text";
        if (messageType is not ("text" or "image" or "file"))
        {
            throw new FieldException("messageType must be \"text\", \"image\" or \"file\".");
        }

        var replyTo = OptionalId(root, "replyToMessageId");

        var mediaUrl = OptionalString(root, "mediaUrl");
        // Uri.TryCreate accepts a NUL in the path; PostgreSQL does not, and would fail the writer's whole batch.
        if (mediaUrl is not null && !IsValidText(mediaUrl))
        {
            throw new FieldException(NotValidText("mediaUrl"));
        }
        if (mediaUrl is not null && LinkUrls.Problem(mediaUrl) is { } problem)
        {
            throw new FieldException($"mediaUrl {problem}.");
        }

        return new FrameReadResult(new SendMessageFrame(conversationId, clientMessageId, content, messageType, replyTo, mediaUrl));
    }

    private string ReadContent(JsonElement root)
    {
        var content = RequiredString(root, "content");
        if (content.Length == 0 || content.Length > maxContentLength)
        {
            throw new FieldException($"content must be 1 to {maxContentLength} characters.");
        }
        if (!IsValidText(content))
        {
            throw new FieldException(NotValidText("content"));
        }
        return content;
    }

    private static SyncFrame ReadSync(JsonElement root)
    {
        var conversationId = RequiredId(root, "conversationId");
        var afterSeq = OptionalPosition(root, "afterSeq") ?? throw new FieldException("afterSeq is required.");
        var afterChangeSeq = OptionalPosition(root, "afterChangeSeq");
        var limit = SyncFrame.DefaultLimit;
        if (root.TryGetProperty("limit", out var limitElement) && limitElement.ValueKind != JsonValueKind.Null)
        {
            if (limitElement.ValueKind != JsonValueKind.Number || !limitElement.TryGetInt32(out limit) || limit is < 1 or > SyncFrame.MaxLimit)
            {
                // "An integer": a 2.5 is between the bounds, and a message that named only them would not say what is wrong.
                throw new FieldException($"limit must be an integer from 1 to {SyncFrame.MaxLimit}.");
            }
        }
        return new SyncFrame(conversationId, afterSeq, limit, afterChangeSeq);
    }

    /// <summary>A position in a conversation (a seq or change seq): an integer, 0 or more.</summary>
    private static long? OptionalPosition(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out var position) || position < 0)
        {
            throw new FieldException($"{name} must be a non-negative integer.");
        }
        return position;
    }

    private static PresenceStatus ReadPresence(JsonElement root) => RequiredString(root, "presenceStatus") switch
    {
        "online" => PresenceStatus.Online,
        "away" => PresenceStatus.Away,
        "busy" => PresenceStatus.Busy,
        "offline" => PresenceStatus.Offline,
        _ => throw new FieldException("presenceStatus must be \"online\", \"away\", \"busy\" or \"offline\"."),
    };

    private static long RequiredId(JsonElement root, string name) =>
        OptionalId(root, name) ?? throw new FieldException($"{name} is required.");

    private static long? OptionalId(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (element.ValueKind != JsonValueKind.Number || !element.TryGetInt64(out var id))
        {
            throw new FieldException($"{name} must be an integer.");
        }
        if (id <= 0)
        {
            throw new FieldException($"{name} must be a positive integer.");
        }
        return id;
    }

    private static string RequiredString(JsonElement root, string name) =>
        OptionalString(root, name) ?? throw new FieldException($"{name} is required.");

    private static string? OptionalString(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (element.ValueKind != JsonValueKind.String)
        {
            throw new FieldException($"{name} must be a string.");
        }
        // An escaped lone surrogate fails here, before the field's own check: the same rule as a NUL, the same words.
        return SafeString(element) ?? throw new FieldException(NotValidText(name));
    }

    private static string NotValidText(string name) => $"{name} {ValidTextRule}.";

    private static bool? OptionalBool(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return element.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new FieldException($"{name} must be true or false."),
        };
    }

    // An escaped lone surrogate ("\ud800") is valid JSON but not text that PostgreSQL can store.
    private static string? SafeString(JsonElement element)
    {
        try
        {
            return element.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>What <see cref="IsValidText"/> asks, as the end of a sentence that names the value.</summary>
    public const string ValidTextRule = "must be valid text: no NUL character and no unpaired surrogate";

    /// <summary>True when the string has no NUL (PostgreSQL text refuses it) and no unpaired surrogate.</summary>
    public static bool IsValidText(string value)
    {
        if (value.Contains('\0'))
        {
            return false;
        }
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsHighSurrogate(c))
            {
                if (i + 1 >= value.Length || !char.IsLowSurrogate(value[i + 1]))
                {
                    return false;
                }
                i++;
            }
            else if (char.IsLowSurrogate(c))
            {
                return false;
            }
        }
        return true;
    }

    // Echoes a little of what the client sent, without cutting a surrogate pair in two.
    private static string Truncate(string value)
    {
        if (value.Length <= 32)
        {
            return value;
        }
        var cut = char.IsHighSurrogate(value[31]) ? 31 : 32;
        return value[..cut] + "...";
    }

    private static FrameReadResult Fail(string code, string message) => new(new FrameError(code, message));

    private sealed class FieldException(string message) : Exception(message);
}

public readonly struct FrameReadResult
{
    public FrameReadResult(ClientFrame frame) => Frame = frame;

    public FrameReadResult(FrameError error) => Error = error;

    public ClientFrame? Frame { get; }

    public FrameError? Error { get; }
}
