using System.Globalization;
using System.Text;
using System.Text.Json;
using Chat.Core.Protocol;
using Chat.Data.Messages;

namespace Chat.Tests.Protocol;

public sealed class FrameWriterTests
{
    private static readonly DateTime Noon = new(2026, 3, 14, 12, 0, 5, 123, DateTimeKind.Utc);

    private const string IsoUtc = @"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$";

    private static JsonElement Parse(byte[] frame)
    {
        // Parsing the text as the client would: any writer mistake in escaping fails here.
        using var document = JsonDocument.Parse(frame);
        return document.RootElement.Clone();
    }

    private static string[] Names(JsonElement frame) => [.. frame.EnumerateObject().Select(p => p.Name)];

    private static StoredMessage StoredMessage(string content = "hello", string? avatar = null, long? replyTo = null, string? mediaUrl = null) => new()
    {
        MessageId = 901,
        ConversationId = 12,
        Seq = 44,
        SenderId = 3,
        SenderName = "Alice",
        SenderAvatarUrl = avatar,
        Content = content,
        MessageType = mediaUrl is null ? "text" : "image",
        ReplyToMessageId = replyTo,
        MediaUrl = mediaUrl,
        ClientMessageId = "m-1",
        CreatedAt = Noon,
    };

    [Test]
    public void A_welcome_frame_has_its_documented_fields()
    {
        var frame = Parse(FrameWriter.Welcome(3, "ext-alice", "Alice", Noon, new ClientLimits(65536, 4000, 10, 20, 2.5, 5, 0.5, 3)));

        Assert.That(Names(frame), Is.EqualTo(new[] { "type", "userId", "externalId", "displayName", "serverTime", "limits" }));
        Assert.That(frame.GetProperty("limits").GetRawText(),
            Is.EqualTo("""{"maxFrameBytes":65536,"maxContentLength":4000,"framesPerSecond":10,"frameBurst":20,"typingPerSecond":2.5,"typingBurst":5,"presencePerSecond":0.5,"presenceBurst":3}"""));
        Assert.That(frame.GetProperty("type").GetString(), Is.EqualTo("welcome"));
        Assert.That(frame.GetProperty("userId").GetInt64(), Is.EqualTo(3));
        Assert.That(frame.GetProperty("externalId").GetString(), Is.EqualTo("ext-alice"));
        Assert.That(frame.GetProperty("displayName").GetString(), Is.EqualTo("Alice"));
        Assert.That(frame.GetProperty("serverTime").GetString(), Is.EqualTo("2026-03-14T12:00:05.123Z"));
    }

    [Test]
    public void A_message_frame_has_its_documented_fields()
    {
        var frame = Parse(FrameWriter.Message(StoredMessage(avatar: "https://cdn.example.com/a.png", replyTo: 900, mediaUrl: "https://cdn.example.com/p.jpg"), isCatchup: true));

        Assert.That(Names(frame), Is.EqualTo(new[]
        {
            "type", "conversationId", "messageId", "seq", "senderId", "senderName", "senderAvatarUrl", "content", "messageType",
            "replyToMessageId", "mediaUrl", "timestamp", "clientMessageId", "isCatchup", "isEdited", "editedAt",
        }));
        Assert.That(frame.GetProperty("isEdited").GetBoolean(), Is.False);
        Assert.That(frame.GetProperty("editedAt").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(frame.GetProperty("type").GetString(), Is.EqualTo("message"));
        Assert.That(frame.GetProperty("conversationId").GetInt64(), Is.EqualTo(12));
        Assert.That(frame.GetProperty("messageId").GetInt64(), Is.EqualTo(901));
        Assert.That(frame.GetProperty("seq").GetInt64(), Is.EqualTo(44));
        Assert.That(frame.GetProperty("senderId").GetInt64(), Is.EqualTo(3));
        Assert.That(frame.GetProperty("senderName").GetString(), Is.EqualTo("Alice"));
        Assert.That(frame.GetProperty("senderAvatarUrl").GetString(), Is.EqualTo("https://cdn.example.com/a.png"));
        Assert.That(frame.GetProperty("content").GetString(), Is.EqualTo("hello"));
        Assert.That(frame.GetProperty("messageType").GetString(), Is.EqualTo("image"));
        Assert.That(frame.GetProperty("replyToMessageId").GetInt64(), Is.EqualTo(900));
        Assert.That(frame.GetProperty("mediaUrl").GetString(), Is.EqualTo("https://cdn.example.com/p.jpg"));
        Assert.That(frame.GetProperty("timestamp").GetString(), Is.EqualTo("2026-03-14T12:00:05.123Z"));
        Assert.That(frame.GetProperty("clientMessageId").GetString(), Is.EqualTo("m-1"));
        Assert.That(frame.GetProperty("isCatchup").GetBoolean(), Is.True);
    }

    [Test]
    public void A_message_frame_writes_absent_optional_fields_as_json_null()
    {
        var frame = Parse(FrameWriter.Message(StoredMessage(), isCatchup: false));

        Assert.That(frame.GetProperty("senderAvatarUrl").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(frame.GetProperty("replyToMessageId").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(frame.GetProperty("mediaUrl").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(frame.GetProperty("isCatchup").ValueKind, Is.EqualTo(JsonValueKind.False));
    }

    [Test]
    public void A_ready_frame_gives_the_users_status_and_lists_each_conversation_with_its_documented_fields()
    {
        var frame = Parse(FrameWriter.Ready(PresenceStatus.Away, [new ReadyConversation(12, 44, 3, true, 6), new ReadyConversation(13, 0, 0, false, 0)]));

        Assert.That(Names(frame), Is.EqualTo(new[] { "type", "presenceStatus", "conversations" }));
        Assert.That(frame.GetProperty("type").GetString(), Is.EqualTo("ready"));
        Assert.That(frame.GetProperty("presenceStatus").GetString(), Is.EqualTo("away"));
        var conversations = frame.GetProperty("conversations").EnumerateArray().ToArray();
        Assert.That(conversations, Has.Length.EqualTo(2));
        Assert.That(Names(conversations[0]), Is.EqualTo(new[] { "conversationId", "lastSeq", "unreadCount", "hasMore", "lastChangeSeq" }));
        Assert.That(conversations[0].GetProperty("conversationId").GetInt64(), Is.EqualTo(12));
        Assert.That(conversations[0].GetProperty("lastSeq").GetInt64(), Is.EqualTo(44));
        Assert.That(conversations[0].GetProperty("unreadCount").GetInt32(), Is.EqualTo(3));
        Assert.That(conversations[0].GetProperty("hasMore").GetBoolean(), Is.True);
        Assert.That(conversations[0].GetProperty("lastChangeSeq").GetInt64(), Is.EqualTo(6));
        Assert.That(conversations[1].GetProperty("conversationId").GetInt64(), Is.EqualTo(13));
        Assert.That(conversations[1].GetProperty("hasMore").GetBoolean(), Is.False);
    }

    [Test]
    public void A_ready_frame_with_no_conversations_has_an_empty_array()
    {
        var frame = Parse(FrameWriter.Ready(PresenceStatus.Online, []));

        Assert.That(frame.GetProperty("conversations").ValueKind, Is.EqualTo(JsonValueKind.Array));
        Assert.That(frame.GetProperty("conversations").GetArrayLength(), Is.Zero);
    }

    [Test]
    public void An_ack_frame_has_its_documented_fields()
    {
        var frame = Parse(FrameWriter.Ack("m-1", 901, 12, 44, Noon));

        Assert.That(Names(frame), Is.EqualTo(new[] { "type", "clientMessageId", "messageId", "conversationId", "seq", "timestamp" }));
        Assert.That(frame.GetProperty("type").GetString(), Is.EqualTo("ack"));
        Assert.That(frame.GetProperty("clientMessageId").GetString(), Is.EqualTo("m-1"));
        Assert.That(frame.GetProperty("messageId").GetInt64(), Is.EqualTo(901));
        Assert.That(frame.GetProperty("conversationId").GetInt64(), Is.EqualTo(12));
        Assert.That(frame.GetProperty("seq").GetInt64(), Is.EqualTo(44));
        Assert.That(frame.GetProperty("timestamp").GetString(), Is.EqualTo("2026-03-14T12:00:05.123Z"));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void A_typing_frame_has_its_documented_fields(bool isTyping)
    {
        var frame = Parse(FrameWriter.Typing(12, 3, "Alice", isTyping, Noon));

        Assert.That(Names(frame), Is.EqualTo(new[] { "type", "conversationId", "senderId", "senderName", "isTyping", "timestamp" }));
        Assert.That(frame.GetProperty("type").GetString(), Is.EqualTo("typing"));
        Assert.That(frame.GetProperty("conversationId").GetInt64(), Is.EqualTo(12));
        Assert.That(frame.GetProperty("senderId").GetInt64(), Is.EqualTo(3));
        Assert.That(frame.GetProperty("senderName").GetString(), Is.EqualTo("Alice"));
        Assert.That(frame.GetProperty("isTyping").GetBoolean(), Is.EqualTo(isTyping));
        Assert.That(frame.GetProperty("timestamp").GetString(), Does.Match(IsoUtc));
    }

    [Test]
    public void A_read_frame_names_the_reader_as_sender()
    {
        var frame = Parse(FrameWriter.Read(12, 901, 33, 5, Noon));

        Assert.That(Names(frame), Is.EqualTo(new[] { "type", "conversationId", "messageId", "seq", "senderId", "timestamp" }));
        Assert.That(frame.GetProperty("type").GetString(), Is.EqualTo("read"));
        Assert.That(frame.GetProperty("conversationId").GetInt64(), Is.EqualTo(12));
        Assert.That(frame.GetProperty("messageId").GetInt64(), Is.EqualTo(901));
        Assert.That(frame.GetProperty("senderId").GetInt64(), Is.EqualTo(5));
        Assert.That(frame.GetProperty("timestamp").GetString(), Does.Match(IsoUtc));
    }

    [Test]
    public void A_read_frame_for_the_readers_own_devices_ends_with_their_unread_count_and_the_positions_it_was_taken_at()
    {
        var frame = Parse(FrameWriter.Read(12, 901, 33, 5, Noon, new UnreadCountAt(0, 40, 3)));

        Assert.That(Names(frame), Is.EqualTo(new[] { "type", "conversationId", "messageId", "seq", "senderId", "timestamp", "unreadCount", "lastSeq", "lastChangeSeq" }));
        Assert.That(frame.GetProperty("unreadCount").GetInt32(), Is.Zero, "a count of 0 is sent, not left out");
        Assert.That((frame.GetProperty("lastSeq").GetInt64(), frame.GetProperty("lastChangeSeq").GetInt64()), Is.EqualTo((40L, 3L)));
    }

    [TestCase(PresenceStatus.Online, "online")]
    [TestCase(PresenceStatus.Away, "away")]
    [TestCase(PresenceStatus.Busy, "busy")]
    [TestCase(PresenceStatus.Offline, "offline")]
    public void A_presence_frame_has_its_documented_fields(PresenceStatus status, string name)
    {
        var frame = Parse(FrameWriter.Presence(3, "Alice", status, Noon));

        Assert.That(Names(frame), Is.EqualTo(new[] { "type", "senderId", "senderName", "presenceStatus", "timestamp" }));
        Assert.That(frame.GetProperty("type").GetString(), Is.EqualTo("presence"));
        Assert.That(frame.GetProperty("senderId").GetInt64(), Is.EqualTo(3));
        Assert.That(frame.GetProperty("senderName").GetString(), Is.EqualTo("Alice"));
        Assert.That(frame.GetProperty("presenceStatus").GetString(), Is.EqualTo(name));
        Assert.That(frame.GetProperty("timestamp").GetString(), Does.Match(IsoUtc));
    }

    [Test]
    public void Presence_names_are_exactly_what_the_reader_accepts()
    {
        var reader = new FrameReader(100);
        foreach (var status in Enum.GetValues<PresenceStatus>())
        {
            var json = $$"""{"type":"presence","presenceStatus":"{{FrameWriter.PresenceName(status)}}"}""";

            Assert.That(reader.Read(Encoding.UTF8.GetBytes(json)).Frame, Is.EqualTo(new PresenceFrame(status)));
        }
    }

    [Test]
    public void An_error_frame_carries_the_client_message_id_when_there_is_one()
    {
        var frame = Parse(FrameWriter.Error(new FrameError(ErrorCodes.BadRequest, "content is required.", "m-1")));

        Assert.That(Names(frame), Is.EqualTo(new[] { "type", "code", "message", "clientMessageId" }));
        Assert.That(frame.GetProperty("type").GetString(), Is.EqualTo("error"));
        Assert.That(frame.GetProperty("code").GetString(), Is.EqualTo("bad_request"));
        Assert.That(frame.GetProperty("message").GetString(), Is.EqualTo("content is required."));
        Assert.That(frame.GetProperty("clientMessageId").GetString(), Is.EqualTo("m-1"));
    }

    [Test]
    public void An_error_frame_leaves_out_the_client_message_id_when_there_is_none()
    {
        var frame = Parse(FrameWriter.Error(new FrameError(ErrorCodes.UnknownType, "Unknown frame type \"x\".")));

        Assert.That(Names(frame), Is.EqualTo(new[] { "type", "code", "message" }));
    }

    [Test]
    public void An_error_about_an_edit_names_the_frame_type_its_conversation_and_its_message()
    {
        var frame = Parse(FrameWriter.Error(FrameError.About(new EditFrame(4, 8, "fixed"), ErrorCodes.NotFound, "Message 8 is deleted.")));

        Assert.That(Names(frame), Is.EqualTo(new[] { "type", "code", "message", "frameType", "conversationId", "messageId" }));
        Assert.That((frame.GetProperty("frameType").GetString(), frame.GetProperty("conversationId").GetInt64(), frame.GetProperty("messageId").GetInt64()),
            Is.EqualTo(("edit", 4L, 8L)));
    }

    [Test]
    public void An_error_about_a_message_names_its_key_and_conversation_and_a_rate_limit_its_wait()
    {
        var message = new SendMessageFrame(4, "m-1", "hi", "text", null, null);

        var frame = Parse(FrameWriter.Error(FrameError.About(message, ErrorCodes.RateLimited, "Too many frames.", retryAfterMs: 250)));

        Assert.That(Names(frame), Is.EqualTo(new[] { "type", "code", "message", "clientMessageId", "frameType", "conversationId", "retryAfterMs" }));
        Assert.That((frame.GetProperty("clientMessageId").GetString(), frame.GetProperty("retryAfterMs").GetInt64(), frame.GetProperty("frameType").GetString(), frame.GetProperty("conversationId").GetInt64()),
            Is.EqualTo(("m-1", 250L, "message", 4L)));
    }

    [Test]
    public void An_error_about_each_kind_of_frame_names_that_kind()
    {
        ClientFrame[] frames =
        [
            new SendMessageFrame(1, "m", "c", "text", null, null), new TypingFrame(1, true), new ReadFrame(1, 2),
            new PresenceFrame(PresenceStatus.Away), new SyncFrame(1, 0, 100), new EditFrame(1, 2, "c"), new DeleteFrame(1, 2),
        ];

        var types = frames.Select(f => Parse(FrameWriter.Error(FrameError.About(f, ErrorCodes.Internal, "x"))).GetProperty("frameType").GetString());

        Assert.That(types, Is.EqualTo(new[] { "message", "typing", "read", "presence", "sync", "edit", "delete" }));
    }

    [Test]
    public void Every_error_the_reader_makes_reaches_the_client_as_readable_text()
    {
        var reader = new FrameReader(100);
        string[] refused =
        [
            "{",
            """{"type":"message","conversationId":1,"clientMessageId":"m-1","content":""}""",
            $$"""{"type":"{{new string('x', 20)}}😀 and more"}""",
            """{"type":"typing","conversationId":"1","clientMessageId":"<b>\"m\"</b>"}""",
            $$"""{"type":"{{new string('é', 40)}}"}""",
        ];

        foreach (var json in refused)
        {
            var error = reader.Read(Encoding.UTF8.GetBytes(json)).Error!;

            var frame = Parse(FrameWriter.Error(error));

            Assert.That(frame.GetProperty("code").GetString(), Is.EqualTo(error.Code), json);
            Assert.That(frame.GetProperty("message").GetString(), Is.EqualTo(error.Message), json);
        }
    }

    [Test]
    public void Local_times_are_written_as_utc()
    {
        var local = new DateTime(2026, 3, 14, 12, 0, 5, 123, DateTimeKind.Local);

        var frame = Parse(FrameWriter.Ack("m-1", 1, 1, 1, local));

        var expected = local.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        Assert.That(frame.GetProperty("timestamp").GetString(), Is.EqualTo(expected));
    }

    [Test]
    public void Timestamps_parse_back_to_the_same_instant_at_millisecond_precision()
    {
        var frame = Parse(FrameWriter.Typing(1, 1, "a", true, Noon.AddTicks(4_567)));

        var parsed = DateTime.Parse(frame.GetProperty("timestamp").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);

        Assert.That(parsed.Kind, Is.EqualTo(DateTimeKind.Utc));
        Assert.That(parsed, Is.EqualTo(Noon));
    }

    [TestCase("plain")]
    [TestCase("emoji 😀👍🏽👨‍👩‍👧 flags 🇯🇵")]
    [TestCase("中文 日本語 한국어")]
    [TestCase("quotes \" and 'single' and `back`")]
    [TestCase(@"back\slash \\ \n \u0041")]
    [TestCase("line one\nline two\r\n\ttabbed")]
    [TestCase("<script>alert(1)</script>")]
    [TestCase("'; DROP TABLE messages; --")]
    // Named: a test case whose generated name holds such a character is never run by the test adapter.
    [TestCase("ctrl \u0001\u001f and del \u007f and nbsp \u00a0 and separators \u2028\u2029", TestName = "Message_content_with_control_characters_and_separators_survives_the_writer_exactly")]
    [TestCase("a & b < c > d + e")]
    public void Message_content_survives_the_writer_exactly(string content)
    {
        var frame = Parse(FrameWriter.Message(StoredMessage(content), isCatchup: false));

        Assert.That(frame.GetProperty("content").GetString(), Is.EqualTo(content));
    }

    [TestCase("中文 日本語 é ß")]
    [TestCase("<script>alert(1)</script>")]
    [TestCase("'; DROP TABLE messages; --")]
    [TestCase("a & b + c")]
    [TestCase("😀 <b>&")]
    [TestCase("emoji 👍🏽👨‍👩‍👧 flags 🇯🇵 and 𝄞 music")]
    public void User_text_is_written_as_its_own_UTF8_bytes_rather_than_escaped(string content)
    {
        var frame = FrameWriter.Message(StoredMessage(content), isCatchup: false);

        Assert.That(frame.AsSpan().IndexOf(Encoding.UTF8.GetBytes(content)), Is.GreaterThan(0), Encoding.UTF8.GetString(frame));
    }

    [Test]
    public void Characters_JSON_allows_raw_are_written_raw_even_those_JavaScript_encoders_escape()
    {
        // Made here rather than in a test case: a test runner's names do not carry a line separator well.
        const string content = "del \u007f nbsp \u00a0 soft hyphen \u00ad separators \u2028\u2029 bom \ufeff private \ue000 last \U0010FFFD";

        var frame = FrameWriter.Message(StoredMessage(content), isCatchup: false);

        Assert.That(frame.AsSpan().IndexOf(Encoding.UTF8.GetBytes(content)), Is.GreaterThan(0), Encoding.UTF8.GetString(frame));
        Assert.That(Parse(frame).GetProperty("content").GetString(), Is.EqualTo(content));
    }

    [Test]
    public void Only_the_quote_the_backslash_and_control_characters_are_escaped_as_JSON_requires()
    {
        const string content = "\"q\" back\\slash \b\f\n\r\t \u0000\u0001\u001f end";

        var text = Encoding.UTF8.GetString(FrameWriter.Message(StoredMessage(content), isCatchup: false));

        Assert.That(text, Does.Contain("""
            "content":"\"q\" back\\slash \b\f\n\r\t \u0000\u0001\u001F end"
            """));
    }

    [Test]
    public void The_encoder_escapes_the_same_when_handed_UTF8_and_replaces_what_is_not_UTF8()
    {
        // The frames are written from strings; a writer handed bytes goes through the encoder's other entry point.
        static string Written(byte[] value)
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JsonTextEncoder.Instance }))
            {
                writer.WriteStringValue(value);
            }
            Assert.That(System.Text.Unicode.Utf8.IsValid(buffer.WrittenSpan), Is.True);
            return Encoding.UTF8.GetString(buffer.WrittenSpan);
        }

        Assert.That(Written(Encoding.UTF8.GetBytes("😀 <b>& \"q\"\n\u0001")), Is.EqualTo("\"😀 <b>& \\\"q\\\"\\n\\u0001\""));
        Assert.That(Written([(byte)'a', 0xFF, (byte)'b']), Is.EqualTo("\"a\ufffdb\""));
        Assert.That(Written([(byte)'a', 0xED, 0xA0, 0x80, (byte)'b']), Does.StartWith("\"a\ufffd").And.EndWith("b\""), "an encoded surrogate is not UTF-8");
    }

    // A lone surrogate cannot be a test case's argument: attributes store strings as UTF-8, which has none.
    [TestCase("a", 0xD800, "b")]
    [TestCase("", 0xDC00, "")]
    [TestCase("tail ", 0xD83D, "")]
    [TestCase("low half ", 0xDE00, " alone")]
    public void A_lone_surrogate_that_reaches_the_writer_becomes_U_FFFD_and_the_frame_stays_valid_JSON(string before, int surrogate, string after)
    {
        // The reader, the HTTP API and the token check refuse such text, so none is stored; this is the writer's own guard.
        var content = before + (char)surrogate + after;

        var frame = FrameWriter.Message(StoredMessage(content), isCatchup: false);

        Assert.That(System.Text.Unicode.Utf8.IsValid(frame), Is.True);
        Assert.That(Parse(frame).GetProperty("content").GetString(), Is.EqualTo(before + '\ufffd' + after));
    }

    [TestCase("Zoë 😀")]
    [TestCase("O'Brien \"the\" <b>bold</b>")]
    public void Names_survive_the_writer_exactly(string name)
    {
        Assert.That(Parse(FrameWriter.Welcome(1, name, name, Noon, new ClientLimits(65536, 4000, 10, 20, 2, 5, 1, 5))).GetProperty("displayName").GetString(), Is.EqualTo(name));
        Assert.That(Parse(FrameWriter.Typing(1, 1, name, true, Noon)).GetProperty("senderName").GetString(), Is.EqualTo(name));
        Assert.That(Parse(FrameWriter.Presence(1, name, PresenceStatus.Away, Noon)).GetProperty("senderName").GetString(), Is.EqualTo(name));
    }

    [TestCase("hello")]
    [TestCase("emoji 😀 中文 \"quoted\" back\\slash\nnew line <script>alert(1)</script> '; DROP TABLE messages; --")]
    public void A_message_the_writer_sends_reads_back_as_the_same_message(string content)
    {
        var stored = StoredMessage(content, replyTo: 900, mediaUrl: "https://cdn.example.com/p.jpg");

        var result = new FrameReader(4000).Read(FrameWriter.Message(stored, isCatchup: false));

        Assert.That(result.Error, Is.Null);
        Assert.That(result.Frame, Is.EqualTo(new SendMessageFrame(
            stored.ConversationId, stored.ClientMessageId, stored.Content, stored.MessageType, stored.ReplyToMessageId, stored.MediaUrl)));
    }

    [Test]
    public void The_replay_and_edit_frames_have_their_documented_fields()
    {
        var at = new DateTime(2026, 3, 14, 12, 0, 5, 123, DateTimeKind.Utc);

        var synced = Parse(FrameWriter.Synced(12, 40, 140, hasMore: true, lastChangeSeq: 7));
        var edited = Parse(FrameWriter.MessageEdited(12, 901, 44, 3, "fixed", at, changeSeq: 7));
        var deleted = Parse(FrameWriter.MessageDeleted(12, 901, 44, 3, at, changeSeq: 8));
        var member = Parse(FrameWriter.MemberLeft(12, 7, at));

        Assert.That(Names(synced), Is.EqualTo(new[] { "type", "conversationId", "afterSeq", "lastSeq", "hasMore", "lastChangeSeq" }));
        Assert.That(synced.ToString(), Is.EqualTo("""{"type":"synced","conversationId":12,"afterSeq":40,"lastSeq":140,"hasMore":true,"lastChangeSeq":7}"""));
        Assert.That(edited.ToString(), Is.EqualTo("""{"type":"messageEdited","conversationId":12,"messageId":901,"seq":44,"senderId":3,"content":"fixed","editedAt":"2026-03-14T12:00:05.123Z","changeSeq":7}"""));
        Assert.That(deleted.ToString(), Is.EqualTo("""{"type":"messageDeleted","conversationId":12,"messageId":901,"seq":44,"senderId":3,"deletedAt":"2026-03-14T12:00:05.123Z","changeSeq":8}"""));
        Assert.That(member.ToString(), Is.EqualTo("""{"type":"member","conversationId":12,"userId":7,"change":"left","timestamp":"2026-03-14T12:00:05.123Z"}"""));
        Assert.That(Parse(FrameWriter.MemberJoined(12, 7, joinedSeq: 43, at)).ToString(),
            Is.EqualTo("""{"type":"member","conversationId":12,"userId":7,"change":"joined","timestamp":"2026-03-14T12:00:05.123Z","joinedSeq":43}"""));
        Assert.That(Names(Parse(FrameWriter.Synced(12, 40, 140, hasMore: false, lastChangeSeq: null))), Does.Not.Contain("lastChangeSeq"));
    }

    [Test]
    public void An_edited_message_says_so_with_its_edit_time_and_change_position()
    {
        var frame = Parse(FrameWriter.Message(new StoredMessage
        {
            MessageId = 1, ConversationId = 2, Seq = 3, SenderId = 4, SenderName = "A", Content = "c", MessageType = "text",
            ClientMessageId = "k", CreatedAt = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc),
            EditedAt = new DateTime(2026, 1, 1, 0, 1, 0, DateTimeKind.Utc), ChangeSeq = 9,
        }, isCatchup: true));

        Assert.That(frame.GetProperty("isEdited").GetBoolean(), Is.True);
        Assert.That(frame.GetProperty("editedAt").GetString(), Is.EqualTo("2026-01-01T00:01:00.000Z"));
        Assert.That(frame.GetProperty("changeSeq").GetInt64(), Is.EqualTo(9));
    }

    [Test]
    public void Each_call_returns_its_own_array()
    {
        var first = FrameWriter.Ack("m-1", 1, 1, 1, Noon);
        var second = FrameWriter.Ack("m-2", 2, 2, 2, Noon);

        Assert.That(first, Is.Not.SameAs(second));
        Assert.That(Parse(first).GetProperty("clientMessageId").GetString(), Is.EqualTo("m-1"));
    }
}
