using System.Text;
using Chat.Core.Protocol;

namespace Chat.Tests.Protocol;

public sealed class FrameReaderTests
{
    private const int MaxContent = 4000;

    private static readonly FrameReader Reader = new(MaxContent);

    private static FrameReadResult Read(string json) => Reader.Read(Encoding.UTF8.GetBytes(json));

    private static T FrameOf<T>(string json) where T : ClientFrame
    {
        var result = Read(json);
        Assert.That(result.Error, Is.Null, () => $"{json} was refused: {result.Error}");
        Assert.That(result.Frame, Is.InstanceOf<T>());
        return (T)result.Frame!;
    }

    private static FrameError ErrorOf(string json) => ErrorOf(Encoding.UTF8.GetBytes(json), json);

    private static FrameError ErrorOf(byte[] utf8, string description)
    {
        var result = Reader.Read(utf8);
        Assert.That(result.Frame, Is.Null, () => $"{description} was accepted as {result.Frame}");
        Assert.That(result.Error, Is.Not.Null);
        return result.Error!;
    }

    private static string Message(string fields) => """{"type":"message","conversationId":7,""" + fields + "}";

    private static string Content(string content) => System.Text.Json.JsonSerializer.Serialize(content);

    // ---- Every frame type, with its defaults ----

    [Test]
    public void A_message_frame_is_read_with_every_field()
    {
        var frame = FrameOf<SendMessageFrame>("""
            {"type":"message","conversationId":7,"clientMessageId":"m-1","content":"hi there",
             "messageType":"image","replyToMessageId":41,"mediaUrl":"https://cdn.example.com/a.png"}
            """);

        Assert.That(frame, Is.EqualTo(new SendMessageFrame(7, "m-1", "hi there", "image", 41, "https://cdn.example.com/a.png")));
    }

    [Test]
    public void A_message_frame_defaults_to_text_with_no_reply_and_no_media()
    {
        var frame = FrameOf<SendMessageFrame>("""{"type":"message","conversationId":7,"clientMessageId":"m-1","content":"hi"}""");

        Assert.That(frame.MessageType, Is.EqualTo("text"));
        Assert.That(frame.ReplyToMessageId, Is.Null);
        Assert.That(frame.MediaUrl, Is.Null);
    }

    [Test]
    public void Explicit_nulls_for_optional_message_fields_read_as_their_defaults()
    {
        var frame = FrameOf<SendMessageFrame>(
            """{"type":"message","conversationId":7,"clientMessageId":"m-1","content":"hi","messageType":null,"replyToMessageId":null,"mediaUrl":null}""");

        Assert.That(frame, Is.EqualTo(new SendMessageFrame(7, "m-1", "hi", "text", null, null)));
    }

    [Test]
    public void A_message_without_a_client_message_id_gets_a_fresh_server_made_one()
    {
        var first = FrameOf<SendMessageFrame>("""{"type":"message","conversationId":7,"content":"hi"}""");
        var second = FrameOf<SendMessageFrame>("""{"type":"message","conversationId":7,"content":"hi","clientMessageId":null}""");

        Assert.That(first.ClientMessageId, Does.StartWith("srv-"));
        Assert.That(second.ClientMessageId, Does.StartWith("srv-"));
        Assert.That(first.ClientMessageId, Is.Not.EqualTo(second.ClientMessageId));
        Assert.That(first.ClientMessageId.Length, Is.LessThanOrEqualTo(FrameReader.MaxClientMessageIdLength));
    }

    [Test]
    public void A_typing_frame_defaults_to_is_typing_true()
    {
        Assert.That(FrameOf<TypingFrame>("""{"type":"typing","conversationId":3}"""), Is.EqualTo(new TypingFrame(3, true)));
        Assert.That(FrameOf<TypingFrame>("""{"type":"typing","conversationId":3,"isTyping":null}"""), Is.EqualTo(new TypingFrame(3, true)));
    }

    [Test]
    public void A_typing_frame_reads_an_explicit_is_typing()
    {
        Assert.That(FrameOf<TypingFrame>("""{"type":"typing","conversationId":3,"isTyping":false}"""), Is.EqualTo(new TypingFrame(3, false)));
        Assert.That(FrameOf<TypingFrame>("""{"type":"typing","conversationId":3,"isTyping":true}"""), Is.EqualTo(new TypingFrame(3, true)));
    }

    [Test]
    public void A_read_frame_is_read_with_its_conversation_and_message()
    {
        Assert.That(FrameOf<ReadFrame>("""{"type":"read","conversationId":3,"messageId":99}"""), Is.EqualTo(new ReadFrame(3, 99)));
    }

    [TestCase("online", PresenceStatus.Online)]
    [TestCase("away", PresenceStatus.Away)]
    [TestCase("busy", PresenceStatus.Busy)]
    [TestCase("offline", PresenceStatus.Offline)]
    public void A_presence_frame_reads_each_status(string name, PresenceStatus status)
    {
        Assert.That(FrameOf<PresenceFrame>($$"""{"type":"presence","presenceStatus":"{{name}}"}"""), Is.EqualTo(new PresenceFrame(status)));
    }

    [Test]
    public void Fields_may_come_in_any_order_and_unknown_fields_are_ignored()
    {
        var frame = FrameOf<ReadFrame>("""{"extra":{"nested":[1,2,3]},"messageId":5,"future":true,"conversationId":2,"type":"read"}""");

        Assert.That(frame, Is.EqualTo(new ReadFrame(2, 5)));
    }

    [Test]
    public void The_largest_64_bit_id_is_accepted()
    {
        Assert.That(FrameOf<ReadFrame>("""{"type":"read","conversationId":9223372036854775807,"messageId":1}"""),
            Is.EqualTo(new ReadFrame(long.MaxValue, 1)));
    }

    // ---- Refusals of the frame as a whole ----

    [Test]
    public void Malformed_json_is_a_bad_request()
    {
        var error = ErrorOf("""{"type":"message",""");

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("Malformed JSON"));
        Assert.That(error.ClientMessageId, Is.Null);
    }

    [TestCase("""{"type":"message","type":"typing","conversationId":1,"content":"hi"}""", "type", null, null, null, null)]
    [TestCase("""{"type":"message","conversationId":2,"clientMessageId":"dup-1","content":"x","content":"y"}""", "content", "message", 2L, null, "dup-1")]
    [TestCase("""{"type":"message","conversationId":2,"clientMessageId":"a","clientMessageId":"b","content":"x"}""", "clientMessageId", "message", 2L, null, null)]
    [TestCase("""{"type":"typing","conversationId":1,"conversationId":2}""", "conversationId", "typing", null, null, null)]
    [TestCase("""{"type":"read","conversationId":1,"messageId":5,"extra":{"a":1,"a":2}}""", "extra.a", "read", 1L, 5L, null)]
    [TestCase("""{"type":"presence","presenceStatus":"away","presenceStatus":"busy","conversationId":3}""", "presenceStatus", "presence", null, null, null)]
    [TestCase("""{"type":"shout","volume":1,"volume":2,"conversationId":3}""", "volume", null, null, null, null)]
    [TestCase("""{"conversationId":1,"conversationId":2,"type":"read","type":"typing","messageId":3}""", "conversationId", null, null, null, null)]
    [TestCase("""{"type":"message","conversationId":1,"conversationId":2,"clientMessageId":"a","clientMessageId":"b","content":"x"}""", "conversationId", "message", null, null, null)]
    public void A_property_given_twice_is_a_bad_request_naming_it_and_what_else_is_known(
        string json, string repeated, string? frameType, long? conversationId, long? messageId, string? clientMessageId)
    {
        var error = ErrorOf(json);

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Is.EqualTo($"The frame has the property \"{repeated}\" more than once; each may appear once."));
        // As any other bad_request of its type, except for the repeated field itself: which of the two was meant is unknown.
        Assert.That((error.FrameType, error.ConversationId, error.MessageId, error.ClientMessageId),
            Is.EqualTo((frameType, conversationId, messageId, clientMessageId)));
    }

    [Test]
    public void Naming_a_repeated_property_costs_no_more_than_reading_the_frame()
    {
        // Long names over many elements: a path joined at every step would allocate names × elements characters.
        var json = $$"""{"type":"typing","{{new string('n', 30_000)}}":[{{string.Join(",", Enumerable.Repeat("0", 15_000))}}],"a":1,"a":2}""";
        var before = GC.GetAllocatedBytesForCurrentThread();

        var error = ErrorOf(json);

        Assert.That(error.Message, Is.EqualTo("The frame has the property \"a\" more than once; each may appear once."));
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.LessThan(20_000_000), "bytes allocated to read and refuse a 60 KB frame");
    }

    [Test]
    public void A_long_repeated_path_is_cut_in_the_message()
    {
        var name = new string('p', 100);
        var error = ErrorOf($$"""{"type":"typing","conversationId":1,"{{name}}":1,"{{name}}":2}""");

        Assert.That(error.Message, Is.EqualTo($"The frame has the property \"{new string('p', 32)}...\" more than once; each may appear once."));
    }

    [Test]
    public void An_empty_payload_is_a_bad_request()
    {
        var error = ErrorOf([], "an empty payload");

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
    }

    [TestCase("""[{"type":"typing","conversationId":1}]""")]
    [TestCase("\"typing\"")]
    [TestCase("42")]
    [TestCase("true")]
    [TestCase("null")]
    public void A_frame_that_is_not_a_json_object_is_a_bad_request(string json)
    {
        var error = ErrorOf(json);

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("JSON object"));
    }

    [Test]
    public void A_frame_without_a_type_is_a_bad_request_naming_type()
    {
        var error = ErrorOf("""{"conversationId":1,"clientMessageId":"m-9"}""");

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("\"type\""));
        Assert.That(error.ClientMessageId, Is.Null, "a frame of no type is not a message: it has no key to name");
    }

    [TestCase("1")]
    [TestCase("null")]
    [TestCase("true")]
    [TestCase("""["message"]""")]
    [TestCase("""{"name":"message"}""")]
    public void A_type_that_is_not_a_string_is_a_bad_request(string type)
    {
        var error = ErrorOf($$"""{"type":{{type}},"conversationId":1}""");

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("\"type\""));
    }

    [TestCase("remove")]
    [TestCase("Message")]
    [TestCase("")]
    public void An_unknown_type_is_refused_as_unknown_type_naming_it(string type)
    {
        var error = ErrorOf($$"""{"type":"{{type}}","conversationId":1,"clientMessageId":"m-2"}""");

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.UnknownType));
        Assert.That(error.Message, Does.Contain($"\"{type}\""));
        Assert.That(error.ClientMessageId, Is.Null, "a frame of an unknown type is not a message: it has no key to name");
    }

    [Test]
    public void A_sync_frame_reads_its_position_and_defaults_the_limit_to_100()
    {
        var frame = FrameOf<SyncFrame>("""{"type":"sync","conversationId":4,"afterSeq":0}""");

        Assert.That(frame, Is.EqualTo(new SyncFrame(4, 0, 100)));
        Assert.That(FrameOf<SyncFrame>("""{"type":"sync","conversationId":4,"afterSeq":9,"limit":500}"""), Is.EqualTo(new SyncFrame(4, 9, 500)));
        Assert.That(FrameOf<SyncFrame>("""{"type":"sync","conversationId":4,"afterSeq":9,"afterChangeSeq":0}"""), Is.EqualTo(new SyncFrame(4, 9, 100, 0)));
        Assert.That(FrameOf<SyncFrame>("""{"type":"sync","conversationId":4,"afterSeq":9,"afterChangeSeq":null}"""), Is.EqualTo(new SyncFrame(4, 9, 100)));
    }

    [TestCase("""{"type":"sync","afterSeq":0}""", "conversationId is required.")]
    [TestCase("""{"type":"sync","conversationId":4,"afterSeq":null}""", "afterSeq is required.")]
    [TestCase("""{"type":"sync","conversationId":4,"afterSeq":1.5}""", "afterSeq must be a non-negative integer.")]
    [TestCase("""{"type":"sync","conversationId":4,"afterSeq":0,"afterChangeSeq":-1}""", "afterChangeSeq must be a non-negative integer.")]
    [TestCase("""{"type":"sync","conversationId":4,"afterSeq":0,"afterChangeSeq":"3"}""", "afterChangeSeq must be a non-negative integer.")]
    [TestCase("""{"type":"sync","conversationId":4,"afterSeq":0,"limit":"10"}""", "limit must be an integer from 1 to 500.")]
    [TestCase("""{"type":"sync","conversationId":4,"afterSeq":0,"limit":1e9}""", "limit must be an integer from 1 to 500.")]
    [TestCase("""{"type":"sync","conversationId":4,"afterSeq":0,"limit":2.5}""", "limit must be an integer from 1 to 500.")]
    public void A_malformed_sync_frame_is_a_bad_request(string json, string message)
    {
        var error = ErrorOf(json);

        Assert.That((error.Code, error.Message), Is.EqualTo((ErrorCodes.BadRequest, message)));
    }

    [Test]
    public void Edit_and_delete_frames_read_their_target_and_the_edit_its_content()
    {
        Assert.That(FrameOf<EditFrame>("""{"type":"edit","conversationId":4,"messageId":8,"content":"fixed"}"""), Is.EqualTo(new EditFrame(4, 8, "fixed")));
        Assert.That(FrameOf<DeleteFrame>("""{"type":"delete","conversationId":4,"messageId":8}"""), Is.EqualTo(new DeleteFrame(4, 8)));
    }

    [TestCase("""{"type":"edit","conversationId":4,"messageId":8}""", "content is required.")]
    [TestCase("""{"type":"edit","conversationId":4,"messageId":"8","content":"x"}""", "messageId must be an integer.")]
    [TestCase("""{"type":"edit","conversationId":4,"messageId":8,"content":"a\u0000b"}""", "content must be valid text: no NUL character and no unpaired surrogate.")]
    [TestCase("""{"type":"delete","conversationId":0,"messageId":8}""", "conversationId must be a positive integer.")]
    public void A_malformed_edit_or_delete_frame_is_a_bad_request(string json, string message)
    {
        var error = ErrorOf(json);

        Assert.That((error.Code, error.Message), Is.EqualTo((ErrorCodes.BadRequest, message)));
    }

    [TestCase("""{"type":"edit","conversationId":4,"messageId":8}""", "edit", 4L, 8L)]
    [TestCase("""{"type":"delete","conversationId":0,"messageId":8}""", "delete", null, 8L)]
    [TestCase("""{"type":"read","conversationId":4,"messageId":"8"}""", "read", 4L, null)]
    [TestCase("""{"type":"sync","conversationId":4,"afterSeq":-1,"messageId":8}""", "sync", 4L, null)]
    [TestCase("""{"type":"message","conversationId":4,"content":"","messageId":8}""", "message", 4L, null)]
    [TestCase("""{"type":"typing","conversationId":4,"isTyping":1,"messageId":8}""", "typing", 4L, null)]
    [TestCase("""{"type":"presence","presenceStatus":"gone","conversationId":4,"messageId":8}""", "presence", null, null)]
    public void A_bad_request_about_a_known_frame_names_its_type_and_whatever_valid_target_it_has(string json, string type, long? conversationId, long? messageId)
    {
        var error = ErrorOf(json);

        Assert.That((error.Code, error.FrameType, error.ConversationId, error.MessageId), Is.EqualTo((ErrorCodes.BadRequest, type, conversationId, messageId)));
    }

    [TestCase("""{"type":"shout","conversationId":4}""")]
    [TestCase("""{"conversationId":4,"messageId":8}""")]
    [TestCase("""[{"type":"edit","conversationId":4}]""")]
    public void An_error_about_a_frame_of_no_known_type_names_no_type_and_no_target(string json)
    {
        var error = ErrorOf(json);

        Assert.That((error.FrameType, error.ConversationId, error.MessageId), Is.EqualTo(((string?)null, (long?)null, (long?)null)));
    }

    [Test]
    public void A_long_unknown_type_is_shortened_in_the_error_message()
    {
        var type = new string('x', 10_000);

        var error = ErrorOf($$"""{"type":"{{type}}"}""");

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.UnknownType));
        Assert.That(error.Message.Length, Is.LessThan(200));
    }

    [Test]
    public void Shortening_an_unknown_type_never_leaves_half_a_surrogate_pair_in_the_error()
    {
        // 31 letters then an emoji: a cut at 32 UTF-16 units falls between the emoji's two halves.
        var type = new string('x', 31) + "😀" + "tail";

        var error = ErrorOf($$"""{"type":"{{type}}"}""");

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.UnknownType));
        Assert.That(FrameReader.IsValidText(error.Message), Is.True, "the error message goes back to the client as JSON text");
    }

    [Test]
    public void A_type_that_is_an_escaped_lone_surrogate_is_refused_without_throwing()
    {
        var error = ErrorOf("""{"type":"\ud800","conversationId":1}""");

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("type"));
    }

    [Test]
    public void Ten_thousand_levels_of_nesting_are_a_bad_request_not_an_exception()
    {
        var depth = 10_000;
        var json = """{"type":"typing","conversationId":1,"x":""" + new string('[', depth) + new string(']', depth) + "}";

        var error = ErrorOf(json);

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
    }

    [Test]
    public void Ten_thousand_levels_of_nested_objects_are_a_bad_request_not_an_exception()
    {
        var json = new StringBuilder();
        for (var i = 0; i < 10_000; i++)
        {
            json.Append("{\"a\":");
        }
        json.Append("1").Append('}', 10_000);

        var error = ErrorOf(json.ToString());

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
    }

    [Test]
    public void Thirty_two_levels_of_nesting_the_frame_itself_included_are_read_and_thirty_three_are_a_bad_request()
    {
        // The frame's own object is the first level; the arrays inside it make the rest.
        static string Nested(int levels) =>
            """{"type":"typing","conversationId":1,"x":""" + new string('[', levels - 1) + new string(']', levels - 1) + "}";

        Assert.That(FrameOf<TypingFrame>(Nested(32)).ConversationId, Is.EqualTo(1));
        var error = ErrorOf(Nested(33));
        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.StartWith("Malformed JSON: "));
    }

    // ---- Ids ----

    [TestCase("\"7\"", "must be an integer")]
    [TestCase("1e400", "must be an integer")]
    [TestCase("99999999999999999999", "must be an integer")]
    [TestCase("9223372036854775808", "must be an integer")]
    [TestCase("1.5", "must be an integer")]
    [TestCase("true", "must be an integer")]
    [TestCase("[7]", "must be an integer")]
    [TestCase("{}", "must be an integer")]
    [TestCase("0", "must be a positive integer")]
    [TestCase("-1", "must be a positive integer")]
    [TestCase("-9223372036854775808", "must be a positive integer")]
    public void A_conversation_id_that_is_not_a_positive_integer_is_refused_by_name(string id, string problem)
    {
        foreach (var json in new[]
                 {
                     $$"""{"type":"message","conversationId":{{id}},"clientMessageId":"m-3","content":"hi"}""",
                     $$"""{"type":"typing","conversationId":{{id}},"clientMessageId":"m-3"}""",
                     $$"""{"type":"read","conversationId":{{id}},"messageId":1,"clientMessageId":"m-3"}""",
                 })
        {
            var error = ErrorOf(json);

            Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest), json);
            Assert.That(error.Message, Does.Contain("conversationId").And.Contain(problem), json);
            Assert.That(error.ClientMessageId, Is.EqualTo(json.Contains("\"type\":\"message\"") ? "m-3" : null), json);
        }
    }

    [TestCase("\"99\"", "must be an integer")]
    [TestCase("1e400", "must be an integer")]
    [TestCase("99999999999999999999", "must be an integer")]
    [TestCase("2.25", "must be an integer")]
    [TestCase("0", "must be a positive integer")]
    [TestCase("-5", "must be a positive integer")]
    public void A_read_message_id_that_is_not_a_positive_integer_is_refused_by_name(string id, string problem)
    {
        var error = ErrorOf($$"""{"type":"read","conversationId":1,"messageId":{{id}}}""");

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("messageId").And.Contain(problem));
    }

    [TestCase("\"41\"", "must be an integer")]
    [TestCase("1e400", "must be an integer")]
    [TestCase("0.5", "must be an integer")]
    [TestCase("0", "must be a positive integer")]
    [TestCase("-41", "must be a positive integer")]
    public void A_reply_to_message_id_that_is_not_a_positive_integer_is_refused_by_name(string id, string problem)
    {
        var error = ErrorOf(Message($$""" "clientMessageId":"m-4","content":"hi","replyToMessageId":{{id}} """));

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("replyToMessageId").And.Contain(problem));
        Assert.That(error.ClientMessageId, Is.EqualTo("m-4"));
    }

    [TestCase("""{"type":"message","content":"hi"}""", "conversationId")]
    [TestCase("""{"type":"message","conversationId":null,"content":"hi"}""", "conversationId")]
    [TestCase("""{"type":"typing"}""", "conversationId")]
    [TestCase("""{"type":"read","messageId":1}""", "conversationId")]
    [TestCase("""{"type":"read","conversationId":1}""", "messageId")]
    [TestCase("""{"type":"message","conversationId":1}""", "content")]
    [TestCase("""{"type":"presence"}""", "presenceStatus")]
    public void A_missing_required_field_is_refused_by_name(string json, string field)
    {
        var error = ErrorOf(json);

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Is.EqualTo($"{field} is required."));
    }

    // ---- Booleans ----

    [TestCase("\"true\"")]
    [TestCase("1")]
    [TestCase("0")]
    [TestCase("\"yes\"")]
    [TestCase("[]")]
    public void An_is_typing_that_is_not_a_boolean_is_refused_by_name(string value)
    {
        var error = ErrorOf($$"""{"type":"typing","conversationId":1,"isTyping":{{value}}}""");

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("isTyping").And.Contain("true or false"));
    }

    // ---- Content ----

    [Test]
    public void Empty_content_is_refused_by_name()
    {
        var error = ErrorOf(Message(""" "clientMessageId":"m-5","content":"" """));

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("content"));
        Assert.That(error.ClientMessageId, Is.EqualTo("m-5"));
    }

    [Test]
    public void Content_exactly_at_the_limit_is_accepted()
    {
        var content = new string('a', MaxContent);

        var frame = FrameOf<SendMessageFrame>(Message($""" "clientMessageId":"m-6","content":{Content(content)} """));

        Assert.That(frame.Content, Is.EqualTo(content));
    }

    [Test]
    public void Content_at_the_limit_counts_utf16_units_so_emoji_count_twice()
    {
        var atLimit = string.Concat(Enumerable.Repeat("😀", MaxContent / 2));
        var overLimit = atLimit + "😀";

        Assert.That(FrameOf<SendMessageFrame>(Message($""" "content":{Content(atLimit)} """)).Content, Is.EqualTo(atLimit));
        Assert.That(ErrorOf(Message($""" "content":{Content(overLimit)} """)).Message, Does.Contain("content"));
    }

    [Test]
    public void Content_one_character_over_the_limit_is_refused_by_name()
    {
        var error = ErrorOf(Message($""" "clientMessageId":"m-7","content":{Content(new string('a', MaxContent + 1))} """));

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("content").And.Contain(MaxContent.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.That(error.ClientMessageId, Is.EqualTo("m-7"));
    }

    [Test]
    public void Content_with_a_nul_character_is_refused_by_name()
    {
        var error = ErrorOf(Message(""" "clientMessageId":"m-8","content":"a\u0000b" """));

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("content"));
        Assert.That(error.ClientMessageId, Is.EqualTo("m-8"));
    }

    [TestCase("""\ud800""")]
    [TestCase("""a\udc00b""")]
    [TestCase("""\ud83d x""")]
    public void Content_with_an_escaped_lone_surrogate_is_refused_by_name(string escaped)
    {
        var error = ErrorOf(Message($$""" "clientMessageId":"m-9","content":"{{escaped}}" """));

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Is.EqualTo("content must be valid text: no NUL character and no unpaired surrogate."), "the rule a NUL breaks too");
        Assert.That(error.ClientMessageId, Is.EqualTo("m-9"));
    }

    [Test]
    public void Content_with_an_escaped_surrogate_pair_is_accepted_as_the_character()
    {
        var frame = FrameOf<SendMessageFrame>(Message(""" "content":"\ud83d\ude00" """));

        Assert.That(frame.Content, Is.EqualTo("😀"));
    }

    [TestCase("42")]
    [TestCase("true")]
    [TestCase("""["hi"]""")]
    [TestCase("""{"text":"hi"}""")]
    public void Content_that_is_not_a_string_is_refused_by_name(string content)
    {
        var error = ErrorOf(Message($$""" "content":{{content}} """));

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Is.EqualTo("content must be a string."));
    }

    // ---- messageType and mediaUrl ----

    [TestCase("text")]
    [TestCase("image")]
    [TestCase("file")]
    public void Each_known_message_type_is_accepted(string messageType)
    {
        var frame = FrameOf<SendMessageFrame>(Message($$""" "content":"x","messageType":"{{messageType}}" """));

        Assert.That(frame.MessageType, Is.EqualTo(messageType));
    }

    [TestCase("\"video\"")]
    [TestCase("\"Text\"")]
    [TestCase("\"\"")]
    [TestCase("1")]
    public void A_message_type_other_than_text_image_or_file_is_refused_by_name(string messageType)
    {
        var error = ErrorOf(Message($$""" "clientMessageId":"m-10","content":"x","messageType":{{messageType}} """));

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("messageType"));
        Assert.That(error.ClientMessageId, Is.EqualTo("m-10"));
    }

    [TestCase("http://example.com/a.png")]
    [TestCase("https://example.com/files/report.pdf?x=1#y")]
    [TestCase("https://example.com/@alice/avatar.png?by=bob@example.com")]
    public void An_http_or_https_media_url_is_accepted(string url)
    {
        var frame = FrameOf<SendMessageFrame>(Message($$""" "content":"x","messageType":"image","mediaUrl":"{{url}}" """));

        Assert.That(frame.MediaUrl, Is.EqualTo(url));
    }

    [TestCase("javascript:alert(1)")]
    [TestCase("data:text/html,<script>alert(1)</script>")]
    [TestCase("file:///etc/passwd")]
    [TestCase("ftp://example.com/a.png")]
    [TestCase("/relative/a.png")]
    [TestCase("example.com/a.png")]
    [TestCase("")]
    [TestCase(" https://example.com/a.png ")]
    [TestCase("https://example.com/a\nb.png")]
    [TestCase("https://example.com/a\tb.png")]
    [TestCase("https://example.com/a b.png")]
    [TestCase("https://bank.example@evil.example/a.png")]
    [TestCase("https://user:pw@example.com/a.png")]
    [TestCase("https://@example.com/a.png")]
    [TestCase("https://:@example.com/a.png")]
    public void A_media_url_that_is_not_absolute_http_or_https_is_refused_by_name(string url)
    {
        var error = ErrorOf(Message($$""" "clientMessageId":"m-11","content":"x","messageType":"image","mediaUrl":{{Content(url)}} """));

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("mediaUrl"));
        Assert.That(error.ClientMessageId, Is.EqualTo("m-11"));
    }

    // Uri.TryCreate accepts a NUL inside the path, and PostgreSQL refuses it in text: one such URL failed the whole batch it was written in.
    [TestCase("""https://files.example.com/a\u0000b.png""")]
    [TestCase("""https://files.example.com/\u0000""")]
    [TestCase("""https://files.example.com/a\ud800b.png""")]
    [TestCase("""https://files.example.com/a\udc00.png""")]
    public void A_media_url_that_is_not_valid_text_is_refused_by_name(string escaped)
    {
        var error = ErrorOf(Message($$""" "clientMessageId":"m-12","content":"x","messageType":"image","mediaUrl":"{{escaped}}" """));

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Is.EqualTo("mediaUrl must be valid text: no NUL character and no unpaired surrogate."));
        Assert.That(error.ClientMessageId, Is.EqualTo("m-12"));
    }

    [Test]
    public void A_media_url_over_its_length_limit_is_refused_by_name()
    {
        var url = "https://example.com/" + new string('a', FrameReader.MaxMediaUrlLength);

        var error = ErrorOf(Message($$""" "content":"x","mediaUrl":"{{url}}" """));

        Assert.That(error.Message, Does.Contain("mediaUrl"));
    }

    [Test]
    public void A_media_url_that_is_not_a_string_is_refused_by_name()
    {
        var error = ErrorOf(Message(""" "content":"x","mediaUrl":{"href":"https://example.com"} """));

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("mediaUrl"));
    }

    // ---- clientMessageId ----

    [Test]
    public void A_client_message_id_of_64_characters_is_accepted()
    {
        var id = new string('k', FrameReader.MaxClientMessageIdLength);

        Assert.That(FrameOf<SendMessageFrame>(Message($$""" "clientMessageId":"{{id}}","content":"x" """)).ClientMessageId, Is.EqualTo(id));
    }

    [Test]
    public void A_client_message_id_over_64_characters_is_refused_by_name()
    {
        var id = new string('k', FrameReader.MaxClientMessageIdLength + 1);

        var error = ErrorOf(Message($$""" "clientMessageId":"{{id}}","content":"x" """));

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("clientMessageId"));
    }

    [TestCase("\"\"")]
    [TestCase("\"a\\u0000b\"")]
    [TestCase("\"\\ud800\"")]
    public void A_client_message_id_that_is_empty_or_not_valid_text_is_refused_by_name(string id)
    {
        var error = ErrorOf(Message($$""" "clientMessageId":{{id}},"content":"x" """));

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("clientMessageId"));
    }

    [TestCase("17")]
    [TestCase("true")]
    [TestCase("""["m-1"]""")]
    public void A_client_message_id_that_is_not_a_string_is_refused_by_name(string id)
    {
        var error = ErrorOf(Message($$""" "clientMessageId":{{id}},"content":"x" """));

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Is.EqualTo("clientMessageId must be a string."));
        Assert.That(error.ClientMessageId, Is.Null);
    }

    [TestCase("""{"type":"typing","conversationId":4,"isTyping":"yes","clientMessageId":"k-1"}""")]
    [TestCase("""{"type":"read","conversationId":4,"clientMessageId":"k-1"}""")]
    [TestCase("""{"type":"presence","presenceStatus":"gone","clientMessageId":"k-1"}""")]
    [TestCase("""{"type":"sync","conversationId":4,"clientMessageId":"k-1"}""")]
    [TestCase("""{"type":"edit","conversationId":4,"messageId":8,"content":"","clientMessageId":"k-1"}""")]
    [TestCase("""{"type":"delete","conversationId":4,"clientMessageId":"k-1"}""")]
    [TestCase("""{"type":"shout","clientMessageId":"k-1"}""")]
    [TestCase("""{"clientMessageId":"k-1"}""")]
    public void Only_a_message_frame_has_its_client_message_id_named_in_an_error(string json)
    {
        var error = ErrorOf(json);

        Assert.That(error.ClientMessageId, Is.Null);
    }

    [Test]
    public void A_refused_frame_without_a_client_message_id_has_none_in_its_error()
    {
        var error = ErrorOf(Message(""" "content":"" """));

        Assert.That(error.ClientMessageId, Is.Null);
    }

    // ---- Presence ----

    [TestCase("\"invisible\"")]
    [TestCase("\"Online\"")]
    [TestCase("\"\"")]
    [TestCase("1")]
    [TestCase("true")]
    public void An_invalid_presence_status_is_refused_by_name(string status)
    {
        var error = ErrorOf($$"""{"type":"presence","presenceStatus":{{status}}}""");

        Assert.That(error.Code, Is.EqualTo(ErrorCodes.BadRequest));
        Assert.That(error.Message, Does.Contain("presenceStatus"));
    }

    // ---- Anything at all ----

    [Test]
    public void Random_bytes_never_make_the_reader_throw_and_always_give_a_frame_or_an_error()
    {
        var random = new Random(1234);
        for (var i = 0; i < 2_000; i++)
        {
            var bytes = new byte[random.Next(0, 200)];
            random.NextBytes(bytes);
            // Give some of them a plausible start so that the parser gets past the first byte.
            if (bytes.Length > 0 && random.Next(3) == 0)
            {
                bytes[0] = (byte)'{';
            }

            AssertExactlyOneOutcome(bytes, () => Convert.ToHexString(bytes));
        }
    }

    [Test]
    public void Random_json_like_text_never_makes_the_reader_throw_and_always_gives_a_frame_or_an_error()
    {
        var random = new Random(1234);
        for (var i = 0; i < 2_000; i++)
        {
            var json = RandomJsonish(random);

            AssertExactlyOneOutcome(Encoding.UTF8.GetBytes(json), () => json);
        }
    }

    private static void AssertExactlyOneOutcome(byte[] input, Func<string> describe)
    {
        FrameReadResult result = default;
        Assert.That(() => result = Reader.Read(input), Throws.Nothing, describe);
        Assert.That(result.Frame is null, Is.Not.EqualTo(result.Error is null), () => $"exactly one of Frame and Error for {describe()}");
        if (result.Error is { } error)
        {
            Assert.That(error.Code, Is.AnyOf(ErrorCodes.BadRequest, ErrorCodes.UnknownType), describe);
            Assert.That(error.Message, Is.Not.Empty, describe);
        }
    }

    private static readonly string[] Keys =
        ["type", "conversationId", "messageId", "clientMessageId", "content", "messageType", "replyToMessageId", "mediaUrl", "isTyping", "presenceStatus", "x"];

    private static readonly string[] Scalars =
    [
        "\"message\"", "\"typing\"", "\"read\"", "\"presence\"", "\"online\"", "\"away\"", "\"text\"", "\"image\"", "\"file\"",
        "\"https://example.com/a\"", "\"javascript:alert(1)\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud83d\\ude00\"", "\"a\\u0000b\"", "\"😀\"", "\"\"",
        "1", "7", "0", "-1", "1.5", "1e400", "99999999999999999999", "9223372036854775807", "true", "false", "null",
    ];

    private static string RandomJsonish(Random random)
    {
        var text = new StringBuilder();
        if (random.Next(4) == 0)
        {
            // Unstructured: tokens thrown together.
            string[] tokens = ["{", "}", "[", "]", ",", ":", "\"", "\\", "\"type\"", "\"message\"", "1", "null", " ", "\\u", "\\ud800", "é", "\0"];
            var count = random.Next(0, 30);
            for (var i = 0; i < count; i++)
            {
                text.Append(tokens[random.Next(tokens.Length)]);
            }
            return text.ToString();
        }

        AppendObject(text, random, depth: 0);
        if (random.Next(10) == 0 && text.Length > 0)
        {
            // Cut it short somewhere.
            text.Length = random.Next(text.Length);
        }
        return text.ToString();
    }

    private static void AppendObject(StringBuilder text, Random random, int depth)
    {
        text.Append('{');
        var fields = random.Next(0, 7);
        for (var i = 0; i < fields; i++)
        {
            if (i > 0)
            {
                text.Append(',');
            }
            text.Append('"').Append(Keys[random.Next(Keys.Length)]).Append("\":");
            AppendValue(text, random, depth);
        }
        text.Append('}');
    }

    private static void AppendValue(StringBuilder text, Random random, int depth)
    {
        switch (depth < 3 ? random.Next(10) : 0)
        {
            case 8:
                AppendObject(text, random, depth + 1);
                break;
            case 9:
                text.Append('[');
                AppendValue(text, random, depth + 1);
                text.Append(']');
                break;
            default:
                text.Append(Scalars[random.Next(Scalars.Length)]);
                break;
        }
    }
}
