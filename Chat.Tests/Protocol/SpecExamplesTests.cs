using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Protocol;

/// <summary>
/// The JSON examples of <c>docs/protocol.md</c> and <c>docs/http-api.md</c>, which client teams code against, checked
/// against what the gateway really sends and accepts. A server example must have the shape of the real frame or body
/// of its kind (<see cref="JsonShape"/>); a client example, sent over a socket with its ids pointed at a real
/// conversation, must get its normal answer.
/// </summary>
public sealed partial class SpecExamplesTests : GatewayTest
{
    /// <summary>
    /// Fields that the specs mark optional ("optional", "absent when ...") and that the example or the real output
    /// may therefore lack. Every other field is required on both sides.
    /// </summary>
    private static readonly Dictionary<string, HashSet<string>> Optional = new()
    {
        // protocol §6.2: changeSeq only on a message edited since it was sent (catch-up, sync).
        ["frame:message"] = ["changeSeq"],
        // protocol §6.8: each names a field of the refused frame only when its type defines it and it was valid;
        // retryAfterMs comes with rate_limited only.
        ["frame:error"] = ["clientMessageId", "frameType", "conversationId", "messageId", "retryAfterMs"],
        // protocol §6.9: absent when the sync had no afterChangeSeq and afterSeq was above 0.
        ["frame:synced"] = ["lastChangeSeq"],
        // protocol §6.6: only on the frame to the reader's own other connections.
        ["frame:read"] = ["unreadCount", "lastSeq", "lastChangeSeq"],
    };

    // The real output of each kind (error frames and problems also by code and status), made in OneTimeSetUp. A key
    // with a "+" is a variant for the tables only: the same kind with its nullable fields set, which no example shows.
    private readonly Dictionary<string, JsonElement> _real = [];

    public static IEnumerable<TestCaseData> ServerExamples() => Cases(e => e.Kind?.Split(':')[0] is "frame" or "http");

    public static IEnumerable<TestCaseData> ClientExamples() => Cases(e => e.Kind?.Split(':')[0] is "client");

    private static IEnumerable<TestCaseData> Cases(Func<SpecExample, bool> which) =>
        SpecExamples.All.Where(which).Select(e => new TestCaseData(e).SetArgDisplayNames($"{e.Document}:{e.Line} {e.Kind}"));

    /// <summary>The kind of real output an example is compared with.</summary>
    private static string RealKey(SpecExample example) => example.Kind switch
    {
        "frame:error" => "frame:error:" + example.Json.GetProperty("code").GetString(),
        "http:problem" => "http:problem:" + example.Json.GetProperty("status").GetInt32(),
        // The frame a reader's own other device gets, and the one everyone else gets.
        "frame:read" => example.Json.TryGetProperty("unreadCount", out _) ? "frame:read:own" : "frame:read",
        var kind => kind!,
    };

    [Test]
    public void Every_json_example_of_the_specs_is_placed()
    {
        Assert.That(SpecExamples.All.Where(e => e.Document == SpecExamples.Protocol), Is.Not.Empty);
        Assert.That(SpecExamples.All.Where(e => e.Document == SpecExamples.HttpApi), Is.Not.Empty);
        Assert.That(SpecExamples.All.Where(e => e.Unreadable is not null).Select(e => $"{e.Document}: the block at line {e.Line}: {e.Unreadable}"), Is.Empty,
            "examples that are not JSON: an example is a value a client could send or receive");
        Assert.That(SpecExamples.All.Where(e => e.Kind is null && e.Unreadable is null).Select(e => $"{e.Document}:{e.Line} under \"{e.Heading}\""), Is.Empty,
            "examples that no rule of SpecExamples places: give each a kind there, so that it is checked");
    }

    [Test]
    public void Every_kind_of_server_output_the_scenario_makes_has_an_example_in_the_specs()
    {
        var shown = ServerExamples().Select(c => RealKey((SpecExample)c.Arguments[0]!)).ToHashSet();

        Assert.That(_real.Keys.Where(k => !k.Contains('+') && !shown.Contains(k)), Is.Empty, "real output without an example in the specs");
    }

    [TestCaseSource(nameof(ServerExamples))]
    public void A_server_example_has_the_fields_and_value_kinds_of_the_real_output(SpecExample example)
    {
        var key = RealKey(example);
        Assert.That(_real.TryGetValue(key, out var real), Is.True, $"the scenario makes no real {key} to compare {example} with: add one to ProduceRealOutputAsync");

        var differences = JsonShape.Differences(example.Json, real, Optional.GetValueOrDefault(example.Kind!, []));

        Assert.That(differences, Is.Empty, $"{example} differs from the server's {key}:\n  example: {example.Json.GetRawText()}\n  server:  {real.GetRawText()}");
    }

    public static IEnumerable<TestCaseData> Tables() =>
        SpecTables.All.Select(t => new TestCaseData(t).SetArgDisplayNames($"{t.Document}:{t.Line} {t.Title}"));

    /// <summary>The real output a field table describes, and where in it the objects it describes are.</summary>
    private static (string Key, string At)[] Described(SpecTable table) => table.Title switch
    {
        "Member" => [("http:conversation-detail", "members[]")],
        "Conversation" => [("http:conversation", ""), ("http:conversation-page", "items[]"), ("http:conversation-detail", "")],
        "Message" => [("http:message-page", "items[]")],
        // protocol §6: "6.4 `ack`".
        var title when ServerFrameTitle().Match(title) is { Success: true } frame => [("frame:" + frame.Groups[1].Value, "")],
        _ => [],
    };

    [TestCaseSource(nameof(Tables))]
    public void The_real_output_has_the_fields_and_types_of_its_table(SpecTable table)
    {
        var reals = Described(table)
            .SelectMany(d => _real.Where(r => r.Key == d.Key || r.Key.StartsWith(d.Key + ":") || r.Key.StartsWith(d.Key + "+")).Select(r => (r.Key, d.At, Real: r.Value)))
            .ToList();
        Assert.That(reals, Is.Not.Empty, $"{table}: no real output to compare with; say which in Described, and make it in ProduceRealOutputAsync");

        var differences = reals.SelectMany(r => JsonShape.TableDifferences(table.Fields, r.Real, r.At).Select(d => $"{r.Key}: {d}"));
        // A nullable field is checked for its type only where it holds a value.
        var neverSet = table.Fields.Where(f => f.Nullable && f.Kind is not null)
            .Where(f => !reals.Any(r => JsonShape.At(r.Real, JsonShape.Join(r.At, f.Path)).Any(v => v.ValueKind != JsonValueKind.Null)))
            .Select(f => f.Path);

        Assert.That(differences, Is.Empty, $"{table} differs from the server");
        Assert.That(neverSet, Is.Empty, $"{table}: nullable fields that no real output sets, so their type is not checked: add a \"+\" variant that sets them");
    }

    [GeneratedRegex(@"^6\.\d+ `(\w+)`$")]
    private static partial Regex ServerFrameTitle();

    // protocol §5: "5.1 `message`: send a chat message".
    [GeneratedRegex(@"^5\.\d+ `(\w+)`:")]
    private static partial Regex ClientFrameTitle();

    public static IEnumerable<TestCaseData> FrameExamples() => Cases(e => e.Kind?.Split(':')[0] is "frame" or "client" && e.Document == SpecExamples.Protocol);

    /// <summary>
    /// Every frame the protocol shows, in a <c>```json</c> block or a transcript, against the table of its type: a
    /// type that has one, each required field with the table's JSON type, and no field that the table does not list.
    /// </summary>
    [TestCaseSource(nameof(FrameExamples))]
    public void A_frame_example_has_the_fields_and_types_of_its_table(SpecExample example)
    {
        var type = example.Kind!.Split(':')[1];
        var (tables, title) = example.Kind.StartsWith("client:") ? (SpecTables.Client, ClientFrameTitle()) : (SpecTables.All, ServerFrameTitle());
        var table = tables.SingleOrDefault(t => title.Match(t.Title) is { Success: true } match && match.Groups[1].Value == type);
        Assert.That(table, Is.Not.Null, $"{example}: the protocol has no table of a {(example.Kind.StartsWith("client:") ? "client" : "server")} frame of type \"{type}\"");

        var differences = JsonShape.TableDifferences(table!.Fields, example.Json, "", "in the example");

        Assert.That(differences, Is.Empty, $"{example} differs from {table}:\n  {example.Json.GetRawText()}");
    }

    [TestCaseSource(nameof(ClientExamples))]
    public async Task A_client_example_gets_its_normal_answer(SpecExample example)
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        // A message of alice's own in the conversation, for the examples that name one (to read, reply to, edit, delete).
        var target = (await a.SendMessageAsync(conversation, "target")).Long("messageId");
        await b.NextAsync("message");
        var frame = JsonNode.Parse(example.Json.GetRawText())!.AsObject();
        foreach (var (name, value) in new[] { ("conversationId", conversation), ("messageId", target), ("replyToMessageId", target) })
        {
            if (frame.ContainsKey(name))
            {
                frame[name] = value;
            }
        }
        var type = frame["type"]!.GetValue<string>();

        await a.SendTextAsync(frame.ToJsonString());

        if (type is "typing" or "read" or "presence")
        {
            // No answer on success (protocol §5.2 to §5.4): answers come in order, so the ack of a message sent next,
            // with no error before it, says this one was accepted. The other member sees its effect.
            var answers = (await ReadThroughBarrierAsync(a, conversation)).Where(f => f.Type() is "ack" or "error");
            Assert.That(answers.Select(f => f.GetRawText()), Has.Exactly(1).Items, "only the next message's ack, no error");
            var relayed = await b.NextAsync(type);
            Assert.That(relayed.Long("senderId"), Is.EqualTo(alice.Id));
            return;
        }
        var expected = type switch
        {
            "message" => "ack",
            "sync" => "synced",
            "edit" => "messageEdited",
            "delete" => "messageDeleted",
            _ => throw new AssertionException($"{example}: no answer is known for a client frame of type {type}; add it here"),
        };
        var answer = await a.NextAsync(f => f.Type() == expected || f.Type() == "error");
        Assert.That(answer.Type(), Is.EqualTo(expected), $"{example} sent as {frame.ToJsonString()} got {answer.GetRawText()}");
    }

    /// <summary>Sends a message after the frames already sent and reads every frame through its answer.</summary>
    private static async Task<List<JsonElement>> ReadThroughBarrierAsync(ChatTestClient client, long conversation)
    {
        await client.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "after-example", content = "after" });
        return await client.ReadThroughAnswerAsync("after-example");
    }

    [Test]
    public async Task The_example_body_that_creates_a_conversation_is_accepted()
    {
        var example = SpecExamples.All.Single(e => e.Kind == "http-request:conversation");
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var body = JsonNode.Parse(example.Json.GetRawText())!.AsObject();
        body["memberExternalIds"] = new JsonArray(bob.ExternalId, carol.ExternalId);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var response = await http.PostAsync("/api/conversations", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created), await response.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// One scenario that makes every kind of server output the specs show, each over a real socket or a real HTTP
    /// request, with the nullable fields set or null as in the examples.
    /// </summary>
    [OneTimeSetUp]
    public async Task ProduceRealOutputAsync()
    {
        var (alice, bob, carol, dave) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        // An older conversation of alice's, so that the list has a second page.
        await Gateway.CreateConversationAsync(alice, carol);
        var created = await http.PostAsJsonAsync("/api/conversations", new { title = "Weekend", isGroup = true, memberExternalIds = new[] { bob.ExternalId, carol.ExternalId } });
        Assert.That(created.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        var conversation = Record("http:conversation", await created.Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId");
        Record("http:user", await http.GetFromJsonAsync<JsonElement>("/api/users/me"));
        Record("http:problem:400", await (await http.PostAsJsonAsync("/api/conversations", new { isGroup = "yes", memberExternalIds = new[] { bob.ExternalId, " carol" } }))
            .ProblemAsync(HttpStatusCode.BadRequest));
        Record("http:problem:405", await (await http.PostAsync("/api/users/me", null)).ProblemAsync(HttpStatusCode.MethodNotAllowed));

        await using var a = await Gateway.ConnectAsync(alice);
        Record("frame:welcome", a.Welcome);
        Record("frame:ready", a.Ready);
        await using var b = await Gateway.ConnectAsync(bob);
        Record("frame:presence", await a.NextAsync("presence"));

        var first = Record("frame:ack", await a.SendMessageAsync(conversation, "Hello Bob"));
        Record("frame:message", await b.NextAsync("message"));
        await a.SendAsync(new { type = "typing", conversationId = conversation, isTyping = true });
        Record("frame:typing", await b.NextAsync("typing"));
        // Bob's other device, closed at once: the scenario needs bob offline later.
        var bobsPhone = await Gateway.ConnectAsync(bob);
        await b.SendAsync(new { type = "read", conversationId = conversation, messageId = first.Long("messageId") });
        Record("frame:read", await a.NextAsync("read"));
        Record("frame:read:own", await bobsPhone.NextAsync("read"));
        await bobsPhone.DisposeAsync();
        await a.SendAsync(new { type = "edit", conversationId = conversation, messageId = first.Long("messageId"), content = "Hello Bob!" });
        Record("frame:messageEdited", await a.NextAsync("messageEdited"));

        var second = await a.SendMessageAsync(conversation, "oops");
        await a.SendAsync(new { type = "delete", conversationId = conversation, messageId = second.Long("messageId") });
        Record("frame:messageDeleted", await a.NextAsync("messageDeleted"));
        await a.SendAsync(new { type = "edit", conversationId = conversation, messageId = second.Long("messageId"), content = "again" });
        Record("frame:error:not_found", await a.NextAsync("error"));
        var notHers = await Gateway.CreateConversationAsync(bob, carol);
        await a.SendAsync(new { type = "message", conversationId = notHers, clientMessageId = "a-3", content = "hi" });
        Record("frame:error:access_denied", await a.NextAsync("error"));

        await a.SendAsync(new { type = "sync", conversationId = conversation, afterSeq = 1, afterChangeSeq = 0 });
        Record("frame:synced", await a.NextAsync("synced"));
        await a.SendMessageAsync(conversation, "See you");

        var added = await http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = dave.ExternalId });
        Assert.That(added.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        Record("frame:member", await a.NextAsync("member"));

        Record("http:conversation-page", await http.GetFromJsonAsync<JsonElement>("/api/conversations?limit=1"));
        // Members in userId order: alice, bob, carol, dave. Bob's last connection has closed, so he has a lastSeenAt;
        // the others have none.
        await b.CloseAsync();
        var detail = default(JsonElement);
        await Eventually.TrueAsync(async () =>
        {
            detail = await http.GetFromJsonAsync<JsonElement>($"/api/conversations/{conversation}");
            return detail.GetProperty("members")[1].GetProperty("lastSeenAt").ValueKind == JsonValueKind.String;
        }, "bob's close is stored");
        Record("http:conversation-detail", detail);
        // From seq 2 on: the deleted message first, as in the example.
        Record("http:message-page", await http.GetFromJsonAsync<JsonElement>($"/api/conversations/{conversation}/messages?afterSeq=1&limit=1"));

        // For the tables, whose nullable fields must also be checked when they hold a value: a member with an avatar,
        // and an edited reply with a media URL, replayed by sync and read from the history.
        var erin = await Gateway.CreateUserAsync();
        var full = await Gateway.CreateConversationAsync(alice, erin);
        await using var e = await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(erin.ExternalId, "Erin", "https://cdn.example.com/erin.png"));
        await e.ReadUntilReadyAsync();
        var replied = await e.SendMessageAsync(full, "plan");
        await e.SendAsync(new { type = "message", conversationId = full, clientMessageId = "e-2", content = "the plan", messageType = "image", replyToMessageId = replied.Long("messageId"), mediaUrl = "https://files.example.com/plan.png" });
        var reply = await e.AnswerAsync("e-2");
        await e.SendAsync(new { type = "edit", conversationId = full, messageId = reply.Long("messageId"), content = "the new plan" });
        await e.NextAsync("messageEdited");
        await a.SendAsync(new { type = "sync", conversationId = full, afterSeq = 1 });
        Record("frame:message+full", await a.NextAsync(f => f.Type() == "message" && f.Long("conversationId") == full));
        Record("http:conversation-detail+full", await http.GetFromJsonAsync<JsonElement>($"/api/conversations/{full}"));
        Record("http:message-page+full", await http.GetFromJsonAsync<JsonElement>($"/api/conversations/{full}/messages?afterSeq=1"));
        // The example shows a joined; the table also describes a left, which has no joinedSeq.
        using var daveHttp = Gateway.CreateHttpClient(dave.ExternalId);
        Assert.That((await daveHttp.DeleteAsync($"/api/conversations/{conversation}/members/{dave.ExternalId}")).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Record("frame:member+left", await a.NextAsync("member"));
    }

    private JsonElement Record(string key, JsonElement real)
    {
        Assert.That(_real.TryAdd(key, real), Is.True, $"{key} is recorded once");
        return real;
    }
}
