using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Api;

public sealed class MembershipTests : GatewayTest
{
    [Test]
    public async Task An_added_members_open_socket_receives_the_conversation_at_once_without_reconnecting()
    {
        var (alice, bob, dave) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, await Gateway.CreateUserAsync());
        var a = await ConnectAsync(alice);
        var d = await ConnectAsync(dave);
        using var http = Gateway.CreateHttpClient(bob.ExternalId);

        var response = await http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = dave.ExternalId });

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        Assert.That((await response.Content.ReadFromJsonAsync<JsonElement>()).Long("userId"), Is.EqualTo(dave.Id));
        var toAlice = await a.NextAsync("member");
        Assert.That((toAlice.Long("conversationId"), toAlice.Long("userId"), toAlice.Str("change")), Is.EqualTo((conversation, dave.Id, "joined")));
        var toDave = await d.NextAsync("member");
        Assert.That(toDave.Long("userId"), Is.EqualTo(dave.Id));

        await a.SendMessageAsync(conversation, "welcome, Dave");
        var delivered = await d.NextAsync("message");
        Assert.That(delivered.Str("content"), Is.EqualTo("welcome, Dave"));

        var ack = await d.SendMessageAsync(conversation, "thanks");
        Assert.That(ack.Type(), Is.EqualTo("ack"));
        await d.SendAsync(new { type = "typing", conversationId = conversation });
        Assert.That((await a.NextAsync("typing")).Long("senderId"), Is.EqualTo(dave.Id));
    }

    // The removal and then a message queue on the conversation's row, in that order: the message is stored after the
    // removal, and the writer publishes it as soon as it commits, while the removal is still being applied to the
    // sockets. It must not reach them.
    [Test]
    public async Task A_message_stored_just_after_a_removal_never_reaches_the_removed_members_sockets()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        var c = await ConnectAsync(carol);
        using var http = Gateway.CreateHttpClient(bob.ExternalId);

        Task<HttpResponseMessage> removal;
        await using (await Sql.HoldAsync("SELECT 1 FROM conversations WHERE id = @conversation FOR UPDATE", new { conversation }))
        {
            removal = http.DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}");
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() >= 1, "the removal waits for the row");
            await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "after-the-removal", content = "not for carol" });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() >= 2, "the message waits behind it");
        }

        Assert.That((await removal).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That((await a.NextAsync("ack")).Long("seq"), Is.EqualTo(1));
        var toCarol = await c.CollectAsync(TimeSpan.FromMilliseconds(500));
        Assert.That(toCarol.Select(f => f.Type()), Does.Contain("member"));
        Assert.That(toCarol.Where(f => f.Type() == "message"), Is.Empty, "stored after she left");
    }

    [Test]
    public async Task A_message_stored_just_after_an_addition_reaches_the_new_members_sockets_after_joined()
    {
        var (alice, bob, dave) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, await Gateway.CreateUserAsync());
        var a = await ConnectAsync(alice);
        var d = await ConnectAsync(dave);
        using var http = Gateway.CreateHttpClient(bob.ExternalId);

        Task<HttpResponseMessage> addition;
        await using (await Sql.HoldAsync("SELECT 1 FROM conversations WHERE id = @conversation FOR UPDATE", new { conversation }))
        {
            addition = http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = dave.ExternalId });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() >= 1, "the addition waits for the row");
            await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "after-the-addition", content = "welcome, Dave" });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() >= 2, "the message waits behind it");
        }

        Assert.That((await addition).StatusCode, Is.EqualTo(HttpStatusCode.Created));
        var toDave = new[] { await d.NextAsync(f => f.Type() is "member" or "message"), await d.NextAsync(f => f.Type() is "member" or "message") };
        Assert.That(toDave.Select(f => f.Type()), Is.EqualTo(new[] { "member", "message" }));
        Assert.That(toDave[1].Str("content"), Is.EqualTo("welcome, Dave"));
    }

    // The message holds the conversation's row and the addition waits behind it: the message is stored before the
    // addition but may be published while it is applied, and so reach the new member. The joined frame tells every
    // member where the new one starts, so that their client knows that message is not theirs to count.
    [Test]
    public async Task The_joined_frame_says_where_the_new_member_starts_reading_after_a_message_the_addition_waited_for()
    {
        var (alice, bob, dave) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, await Gateway.CreateUserAsync());
        var a = await ConnectAsync(alice);
        await a.SendMessageAsync(conversation, "one");
        await a.SendMessageAsync(conversation, "two");
        var d = await ConnectAsync(dave);
        using var http = Gateway.CreateHttpClient(bob.ExternalId);

        Task<HttpResponseMessage> addition;
        await using (await Sql.HoldAsync("SELECT 1 FROM conversations WHERE id = @conversation FOR UPDATE", new { conversation }))
        {
            await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "before-the-addition", content = "not for dave" });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() >= 1, "the message waits for the row");
            addition = http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = dave.ExternalId });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() >= 2, "the addition waits behind it");
        }

        Assert.That((await addition).StatusCode, Is.EqualTo(HttpStatusCode.Created));
        var toDave = await d.NextAsync("member");
        var toAlice = await a.NextAsync("member");
        var stored = await Sql.ScalarAsync<long>(
            "SELECT joined_seq FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @dave", new { conversation, dave = dave.Id });
        var lastSeq = await Sql.ScalarAsync<long>("SELECT last_seq FROM conversations WHERE id = @conversation", new { conversation });
        Assert.That((stored, lastSeq), Is.EqualTo((3L, 3L)), "dave joined after the message that the addition waited for");
        Assert.That(toDave.Long("joinedSeq"), Is.EqualTo(stored), "the new member is told where they start reading");
        Assert.That(toAlice.Long("joinedSeq"), Is.EqualTo(stored), "and so is every other member");
        var after = await a.SendMessageAsync(conversation, "welcome, Dave");
        Assert.That((await d.NextAsync(f => f.Type() == "message" && f.Long("seq") > toDave.Long("joinedSeq"))).Long("seq"), Is.EqualTo(after.Long("seq")),
            "the first message above joinedSeq that dave receives is the first one stored after he joined");
    }

    // A direct conversation re-opened by the member who had left it is an addition: they start where they came back.
    [Test]
    public async Task The_joined_frame_of_a_reopened_direct_conversation_says_where_the_returning_member_starts_reading()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var aliceHttp = Gateway.CreateHttpClient(alice.ExternalId);
        using var bobHttp = Gateway.CreateHttpClient(bob.ExternalId);
        var opened = await aliceHttp.PostAsJsonAsync("/api/conversations", new { isGroup = false, memberExternalIds = new[] { bob.ExternalId } });
        var conversation = (await opened.Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId");
        var a = await ConnectAsync(alice);
        await a.SendMessageAsync(conversation, "before bob leaves");
        Assert.That((await bobHttp.DeleteAsync($"/api/conversations/{conversation}/members/{bob.ExternalId}")).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        await a.SendMessageAsync(conversation, "while bob is away");
        await a.SendMessageAsync(conversation, "still away");
        var b = await ConnectAsync(bob);

        var reopening = await bobHttp.PostAsJsonAsync("/api/conversations", new { isGroup = false, memberExternalIds = new[] { alice.ExternalId } });

        Assert.That(reopening.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var toBob = await b.NextAsync("member");
        var toAlice = await a.NextAsync(f => f.Type() == "member" && f.Str("change") == "joined");
        var stored = await Sql.ScalarAsync<long>(
            "SELECT joined_seq FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @bob", new { conversation, bob = bob.Id });
        var lastSeq = await Sql.ScalarAsync<long>("SELECT last_seq FROM conversations WHERE id = @conversation", new { conversation });
        Assert.That((stored, lastSeq), Is.EqualTo((3L, 3L)));
        Assert.That((toBob.Long("userId"), toBob.Str("change"), toBob.Long("joinedSeq")), Is.EqualTo((bob.Id, "joined", stored)));
        Assert.That(toAlice.Long("joinedSeq"), Is.EqualTo(stored));
    }

    [Test]
    public async Task A_removal_that_waited_behind_a_message_is_stamped_after_it()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        using var http = Gateway.CreateHttpClient(bob.ExternalId);

        Task<HttpResponseMessage> removal;
        await using (await Sql.HoldAsync("SELECT 1 FROM conversations WHERE id = @conversation FOR UPDATE", new { conversation }))
        {
            await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "before-the-removal", content = "still for carol" });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() >= 1, "the message waits for the row");
            removal = http.DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}");
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() >= 2, "the removal waits behind it");
            await Task.Delay(100);
        }

        Assert.That((await removal).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        // Either may come first: the ack after the commit, the member frame once the removal is applied.
        var frames = new[] { await a.NextAsync(f => f.Type() is "ack" or "member"), await a.NextAsync(f => f.Type() is "ack" or "member") };
        var (ack, left) = (frames.Single(f => f.Type() == "ack"), frames.Single(f => f.Type() == "member"));
        Assert.That(DateTime.Parse(left.Str("timestamp")!, System.Globalization.CultureInfo.InvariantCulture),
            Is.GreaterThanOrEqualTo(DateTime.Parse(ack.Str("timestamp")!, System.Globalization.CultureInfo.InvariantCulture)),
            "a timeline sorted by time shows the message before the removal, as their order in the database does");
    }

    [Test]
    public async Task A_removed_members_open_socket_stops_receiving_and_can_no_longer_send()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        var c = await ConnectAsync(carol);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var response = await http.DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        var toCarol = await c.NextAsync("member");
        Assert.That((toCarol.Long("userId"), toCarol.Str("change")), Is.EqualTo((carol.Id, "left")));
        Assert.That((await a.NextAsync("member")).Str("change"), Is.EqualTo("left"));

        // Alice's message is published before her ack, so it would be in Carol's queue by now; read before Carol
        // sends anything, since waiting for her own answers skips the frames before them.
        await a.SendMessageAsync(conversation, "carol is gone");
        await a.SendAsync(new { type = "typing", conversationId = conversation });
        var seenByCarol = await c.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() is "message" or "typing");
        Assert.That(seenByCarol, Is.Empty);

        var refused = await c.SendMessageAsync(conversation, "can I still talk?");
        Assert.That(refused.Str("code"), Is.EqualTo("access_denied"), "and her socket is still open");
        await c.SendAsync(new { type = "typing", conversationId = conversation });
        Assert.That((await c.NextAsync("error")).Str("code"), Is.EqualTo("access_denied"));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(1));
    }

    // Typing is shown per user: a member removed while typing on two devices is shown stopped once, after "left".
    [Test]
    public async Task A_member_removed_while_typing_is_shown_to_the_others_as_stopped_once()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        var phone = await ConnectAsync(carol);
        var laptop = await ConnectAsync(carol);
        await phone.SendAsync(new { type = "typing", conversationId = conversation });
        await laptop.SendAsync(new { type = "typing", conversationId = conversation });
        await a.NextAsync(f => f.Type() == "typing" && f.GetProperty("isTyping").GetBoolean());
        await a.NextAsync(f => f.Type() == "typing" && f.GetProperty("isTyping").GetBoolean());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        Assert.That((await http.DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}")).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));

        var seenByAlice = await a.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() is "member" or "typing");
        Assert.That(seenByAlice.Select(f => f.Type() == "member"
                ? $"member {f.Long("userId")} {f.Str("change")}"
                : $"typing {f.Long("senderId")} {f.GetProperty("isTyping").GetBoolean()}"),
            Is.EqualTo(new[] { $"member {carol.Id} left", $"typing {carol.Id} False" }));
    }

    [Test]
    public async Task A_member_can_leave_a_direct_conversation_but_not_remove_the_other_person()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var created = await (await http.PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { bob.ExternalId } })).Content.ReadFromJsonAsync<JsonElement>();
        var conversation = created.Long("conversationId");

        var removeOther = await http.DeleteAsync($"/api/conversations/{conversation}/members/{bob.ExternalId}");
        var add = await http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = "someone-else" });
        var leave = await http.DeleteAsync($"/api/conversations/{conversation}/members/{alice.ExternalId}");
        var afterLeaving = await http.GetAsync($"/api/conversations/{conversation}");

        Assert.That(removeOther.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(add.StatusCode, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(leave.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That(afterLeaving.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    [Test]
    public async Task A_member_whose_external_id_holds_slashes_can_be_removed_and_can_leave()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, await Gateway.CreateUserAsync());
        var dave = $"https://idp.example/users/{Guid.NewGuid():N}";
        var erin = $"https://idp.example/users/{Guid.NewGuid():N}";
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        using var erinHttp = Gateway.CreateHttpClient(erin);
        var added = await http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = dave });
        await http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = erin });

        var removed = await http.DeleteAsync(added.Headers.Location);
        var left = await erinHttp.DeleteAsync($"/api/conversations/{conversation}/members/{Uri.EscapeDataString(erin)}");

        Assert.That((removed.StatusCode, left.StatusCode), Is.EqualTo((HttpStatusCode.NoContent, HttpStatusCode.NoContent)));
        Assert.That(added.Headers.Location!.OriginalString, Does.EndWith(Uri.EscapeDataString(dave)), "the Location of an added member is where to remove them");
    }

    [Test]
    public async Task Naming_existing_users_as_members_leaves_their_profiles_unwritten()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        // xmin names the transaction that wrote the row version: a write of any kind would change it.
        const string Versions = "SELECT xmin::text FROM user_profiles WHERE id = ANY(@ids) ORDER BY id";
        var before = await Sql.QueryAsync<string>(Versions, new { ids = new[] { bob.Id, carol.Id } });
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var created = await http.PostAsJsonAsync("/api/conversations", new { isGroup = true, memberExternalIds = new[] { bob.ExternalId } });
        var conversation = (await created.Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId");
        var added = await http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = carol.ExternalId });

        Assert.That((created.StatusCode, added.StatusCode), Is.EqualTo((HttpStatusCode.Created, HttpStatusCode.Created)));
        Assert.That(await Sql.QueryAsync<string>(Versions, new { ids = new[] { bob.Id, carol.Id } }), Is.EqualTo(before));
    }

    [Test]
    public async Task Removing_a_non_member_from_a_direct_conversation_answers_404_whether_or_not_they_exist()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var existing = await http.DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}");
        var unknown = await http.DeleteAsync($"/api/conversations/{conversation}/members/nobody-{Guid.NewGuid():N}");

        Assert.That((existing.StatusCode, unknown.StatusCode), Is.EqualTo((HttpStatusCode.NotFound, HttpStatusCode.NotFound)),
            "the answer must not tell which external ids have a profile");
    }

    [Test]
    public async Task Deleting_a_message_from_before_a_member_joined_leaves_their_unread_count_alone()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var a = await ConnectAsync(alice);
        var old = await a.SendMessageAsync(conversation, "before carol");
        await http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = carol.ExternalId });
        var recent = await a.SendMessageAsync(conversation, "for carol too");

        await a.SendAsync(new { type = "delete", conversationId = conversation, messageId = old.Long("messageId") });
        await a.NextAsync("messageDeleted");
        var afterOld = await Sql.UnreadCountAsync(conversation, carol.Id);
        await a.SendAsync(new { type = "delete", conversationId = conversation, messageId = recent.Long("messageId") });
        await a.NextAsync("messageDeleted");

        Assert.That(afterOld, Is.EqualTo(1), "only the message after her joining counted for her");
        Assert.That(await Sql.UnreadCountAsync(conversation, carol.Id), Is.EqualTo(0));
    }

    [Test]
    public async Task Adding_a_member_twice_answers_200_and_removing_a_non_member_answers_404()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var again = await http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = bob.ExternalId });
        var stranger = await http.DeleteAsync($"/api/conversations/{conversation}/members/nobody-{Guid.NewGuid():N}");
        var invalid = await http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = 5 });

        Assert.That(again.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(stranger.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(invalid.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That((await invalid.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").TryGetProperty("externalId", out _), Is.True);
    }

    // PostgreSQL refuses a NUL in text, and escapes that are not UTF-8 (a lone surrogate's, a stray byte) spell no
    // text at all: each is a bad request, never a lookup.
    [TestCase("nobody%00x", HttpStatusCode.BadRequest)]
    [TestCase("nobody%ED%A0%80", HttpStatusCode.BadRequest)]
    [TestCase("nobody%FF", HttpStatusCode.BadRequest)]
    [TestCase("nobody%FF/", HttpStatusCode.BadRequest)]
    public async Task Removing_a_member_whose_external_id_in_the_path_is_NUL_or_not_UTF8_never_reaches_the_database(string escaped, HttpStatusCode expected)
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var response = await http.DeleteAsync($"/api/conversations/{conversation}/members/{escaped}");

        Assert.That(response.StatusCode, Is.EqualTo(expected));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM conversation_participants WHERE conversation_id = @conversation AND is_active", new { conversation }), Is.EqualTo(3));
    }

    [Test]
    public async Task An_escape_that_is_not_UTF8_does_not_name_the_user_whose_id_is_its_text()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var literal = $"%FF-{Guid.NewGuid():N}";
        Assert.That((await http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = literal })).StatusCode, Is.EqualTo(HttpStatusCode.Created));

        using var undecodable = await http.DeleteAsync($"/api/conversations/{conversation}/members/{literal}");
        var problem = await undecodable.ProblemAsync(HttpStatusCode.BadRequest);
        Assert.That(problem.Errors("externalId").Single(), Does.StartWith("externalId must be valid text"));
        Assert.That(await Sql.ScalarAsync<bool>(
            "SELECT p.is_active FROM conversation_participants p JOIN user_profiles u ON u.id = p.user_id WHERE p.conversation_id = @conversation AND u.external_id = @literal",
            new { conversation, literal }), Is.True);

        using var withSlash = await http.DeleteAsync($"/api/conversations/{conversation}/members/{literal}/");
        Assert.That(withSlash.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), "a trailing slash changes nothing");

        using var escaped = await http.DeleteAsync($"/api/conversations/{conversation}/members/{Uri.EscapeDataString(literal)}");
        Assert.That(escaped.StatusCode, Is.EqualTo(HttpStatusCode.NoContent), "%25FF names the user whose id is the text %FF");
    }

    [TestCase(@"nobody\u0000x")]
    [TestCase(@"nobody\ud800")]
    public async Task Adding_a_member_whose_external_id_is_not_valid_text_answers_400_naming_it(string escaped)
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        using var body = new StringContent($$"""{"externalId":"{{escaped}}"}""", System.Text.Encoding.UTF8, "application/json");
        var response = await http.PostAsync($"/api/conversations/{conversation}/members", body);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That((await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").TryGetProperty("externalId", out _), Is.True);
    }

    [Test]
    public async Task Reopening_a_direct_conversation_that_waited_behind_a_message_joins_after_it_and_is_stamped_after_it()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var aliceHttp = Gateway.CreateHttpClient(alice.ExternalId);
        using var bobHttp = Gateway.CreateHttpClient(bob.ExternalId);
        var opened = await aliceHttp.PostAsJsonAsync("/api/conversations", new { isGroup = false, memberExternalIds = new[] { bob.ExternalId } });
        var conversation = (await opened.Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId");
        Assert.That((await bobHttp.DeleteAsync($"/api/conversations/{conversation}/members/{bob.ExternalId}")).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        var a = await ConnectAsync(alice);

        Task<HttpResponseMessage> reopening;
        await using (await Sql.HoldAsync("SELECT 1 FROM conversations WHERE id = @conversation FOR UPDATE", new { conversation }))
        {
            await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "before-the-return", content = "while bob is away" });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() >= 1, "the message waits for the row");
            reopening = bobHttp.PostAsJsonAsync("/api/conversations", new { isGroup = false, memberExternalIds = new[] { alice.ExternalId } });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() >= 2, "the reopening waits behind it");
            await Task.Delay(100);
        }

        Assert.That((await reopening).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var frames = new[] { await a.NextAsync(f => f.Type() is "ack" or "member"), await a.NextAsync(f => f.Type() is "ack" or "member") };
        var (ack, joined) = (frames.Single(f => f.Type() == "ack"), frames.Single(f => f.Type() == "member"));
        var row = (await Sql.QueryAsync<(long JoinedSeq, DateTime JoinedAt, int Unread)>(
            "SELECT joined_seq, joined_at, unread_count FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @bob",
            new { conversation, bob = bob.Id })).Single();
        Assert.That(row.JoinedSeq, Is.EqualTo(1), "bob came back after the message: it is not his to read");
        Assert.That(row.Unread, Is.Zero);
        var messageAt = DateTime.Parse(ack.Str("timestamp")!, System.Globalization.CultureInfo.InvariantCulture).ToUniversalTime();
        Assert.That(row.JoinedAt, Is.GreaterThanOrEqualTo(messageAt), "joined_at follows the messages before the return, as joined_seq does");
        Assert.That(DateTime.Parse(joined.Str("timestamp")!, System.Globalization.CultureInfo.InvariantCulture).ToUniversalTime(), Is.GreaterThanOrEqualTo(messageAt),
            "a timeline sorted by time shows the message before the return, as their order in the database does");
    }

    [Test]
    public async Task A_group_whose_last_member_leaves_stays_in_the_database_out_of_everyones_reach()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        await a.SendMessageAsync(conversation, "kept");
        using var aliceHttp = Gateway.CreateHttpClient(alice.ExternalId);
        using var bobHttp = Gateway.CreateHttpClient(bob.ExternalId);

        var removed = new[]
        {
            await aliceHttp.DeleteAsync($"/api/conversations/{conversation}/members/{bob.ExternalId}"),
            await aliceHttp.DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}"),
            await aliceHttp.DeleteAsync($"/api/conversations/{conversation}/members/{alice.ExternalId}"),
        };
        var readdedByLast = await aliceHttp.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = alice.ExternalId });
        var readdedByEarlier = await bobHttp.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = bob.ExternalId });
        var read = await aliceHttp.GetAsync($"/api/conversations/{conversation}/messages");

        Assert.That(removed.Select(r => r.StatusCode), Is.All.EqualTo(HttpStatusCode.NoContent));
        Assert.That((readdedByLast.StatusCode, readdedByEarlier.StatusCode, read.StatusCode),
            Is.EqualTo((HttpStatusCode.NotFound, HttpStatusCode.NotFound, HttpStatusCode.NotFound)), "adding takes an active member");
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM conversation_participants WHERE conversation_id = @conversation AND is_active", new { conversation }),
            Is.Zero);
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(1), "the group and its history stay");
    }

    [Test]
    public async Task A_member_who_comes_back_starts_with_no_unread_messages_and_no_catchup_of_the_time_away()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var a = await ConnectAsync(alice);
        await a.SendMessageAsync(conversation, "before");
        await http.DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}");
        await a.SendMessageAsync(conversation, "while away");

        var back = await http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = carol.ExternalId });
        await a.SendMessageAsync(conversation, "after");
        var c = await ConnectAsync(carol);

        Assert.That(back.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        Assert.That(c.Catchup.Select(m => m.Str("content")), Is.EqualTo(new[] { "after" }));
        Assert.That(await Sql.UnreadCountAsync(conversation, carol.Id), Is.EqualTo(1));
        using var carolHttp = Gateway.CreateHttpClient(carol.ExternalId);
        var history = await carolHttp.GetFromJsonAsync<JsonElement>($"/api/conversations/{conversation}/messages");
        Assert.That(history.GetProperty("items").EnumerateArray().Select(m => m.Str("content")), Is.EqualTo(new[] { "before", "while away", "after" }),
            "the history keeps what was said before and while she was away");
    }

    [Test]
    public async Task A_connection_that_starts_while_its_user_is_removed_does_not_keep_the_conversation()
    {
        // The membership change and a connection's start race; whichever order they take, the socket ends up
        // receiving exactly the conversations the user is a member of.
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var a = await ConnectAsync(alice);
        for (var round = 0; round < 10; round++)
        {
            var carol = await Gateway.CreateUserAsync();
            var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
            var connecting = Gateway.ConnectAsync(carol);
            var removing = http.DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}");
            await using var c = await connecting;
            Assert.That((await removing).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));

            await a.SendMessageAsync(conversation, $"round {round}");
            var leaked = await c.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() == "message");
            Assert.That(leaked, Is.Empty, $"round {round}");
        }
    }

    [Test]
    public async Task Creating_a_group_tells_every_members_open_socket_of_every_member()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var sockets = new[] { await ConnectAsync(alice), await ConnectAsync(bob), await ConnectAsync(carol) };
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var created = await (await http.PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { bob.ExternalId, carol.ExternalId } }))
            .Content.ReadFromJsonAsync<JsonElement>();

        foreach (var socket in sockets)
        {
            var joined = new List<long>();
            for (var i = 0; i < 3; i++)
            {
                var frame = await socket.NextAsync("member");
                Assert.That(frame.Long("conversationId"), Is.EqualTo(created.Long("conversationId")));
                Assert.That(frame.Str("timestamp"), Is.EqualTo(created.Str("createdAt")), "when the membership was stored, with the conversation");
                Assert.That(frame.Long("joinedSeq"), Is.Zero, "a new conversation's members start at its start");
                joined.Add(frame.Long("userId"));
            }
            Assert.That(joined, Is.EquivalentTo(new[] { alice.Id, bob.Id, carol.Id }));
        }
        await sockets[2].SendMessageAsync(created.Long("conversationId"), "first!");
        Assert.That((await sockets[1].NextAsync("message")).Str("content"), Is.EqualTo("first!"));
    }

    [Test]
    public async Task Concurrent_removals_of_one_member_answer_204_once_and_404_otherwise()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        using var aliceHttp = Gateway.CreateHttpClient(alice.ExternalId);
        using var bobHttp = Gateway.CreateHttpClient(bob.ExternalId);

        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(i =>
            (i % 2 == 0 ? aliceHttp : bobHttp).DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}")));

        Assert.That(responses.Count(r => r.StatusCode == HttpStatusCode.NoContent), Is.EqualTo(1));
        Assert.That(responses.Count(r => r.StatusCode == HttpStatusCode.NotFound), Is.EqualTo(5));
    }

    [Test]
    public async Task Quick_add_and_remove_leave_the_socket_matching_the_database()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var a = await ConnectAsync(alice);
        for (var round = 0; round < 10; round++)
        {
            var dave = await Gateway.CreateUserAsync();
            await using var d = await Gateway.ConnectAsync(dave);
            var adding = http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = dave.ExternalId });
            var removing = http.DeleteAsync($"/api/conversations/{conversation}/members/{dave.ExternalId}");
            await Task.WhenAll(adding, removing);
            var member = await Sql.ScalarAsync<bool>(
                "SELECT COALESCE((SELECT is_active FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @user), false)",
                new { conversation, user = dave.Id });

            await a.SendMessageAsync(conversation, $"round {round}");
            // A member's copy may take its time on a busy machine; anything beyond it, or any copy for a non-member, is a leak.
            if (member)
            {
                Assert.That((await d.NextAsync("message")).Str("content"), Is.EqualTo($"round {round}"));
            }
            var extra = await d.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() == "message");
            Assert.That(extra, Is.Empty, $"round {round}: member = {member}");
        }
    }

    // The rest of the body is not read, so the connection ends with the answer: it says so, and the client's next
    // request on the same HttpClient goes out on a new connection instead of failing on the closed one.
    [TestCase(true)]
    [TestCase(false)]
    public async Task A_body_over_64_KiB_answers_413_and_closes_the_connection_saying_so(bool chunked)
    {
        var alice = await Gateway.CreateUserAsync();
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var body = System.Text.Json.JsonSerializer.Serialize(new { memberExternalIds = new[] { "bob" }, title = new string('x', 70_000) });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/conversations") { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
        request.Headers.TransferEncodingChunked = chunked;

        var response = await http.SendAsync(request);
        var next = await http.GetAsync("/api/users/me");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge));
        Assert.That(response.Headers.ConnectionClose, Is.True);
        Assert.That(next.StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    // In the Development environment too (the tests' gateway runs in it): the developer exception page would
    // otherwise answer with the server's exception and its stack trace.
    [Test]
    public async Task A_malformed_chunked_body_answers_a_bare_400_and_closes_the_connection()
    {
        var alice = await Gateway.CreateUserAsync();
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(System.Net.IPAddress.Loopback, Gateway.HttpAddress.Port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(
            "POST /api/conversations HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
            $"Authorization: Bearer {Gateway.TokenFor(alice.ExternalId)}\r\n" +
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n"));

        var answer = new System.Text.StringBuilder();
        var buffer = new byte[4096];
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        int read;
        while ((read = await stream.ReadAsync(buffer, limit.Token)) > 0)
        {
            answer.Append(System.Text.Encoding.ASCII.GetString(buffer, 0, read));
        }

        var text = answer.ToString();
        Assert.That(text, Does.StartWith("HTTP/1.1 400"));
        Assert.That(text, Does.Contain("Connection: close"));
        Assert.That(text, Does.Contain("Content-Length: 0"), text);
        Assert.That(text, Does.Not.Contain("Exception"));
    }
}
