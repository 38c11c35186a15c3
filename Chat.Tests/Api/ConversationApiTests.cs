using Dapper;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Api;

public sealed class ConversationApiTests : GatewayTest
{
    [Test]
    public async Task Creating_a_group_answers_201_with_the_caller_and_the_named_members()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var response = await http.PostAsJsonAsync("/api/conversations", new { title = "Weekend", memberExternalIds = new[] { bob.ExternalId, carol.ExternalId } });

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.That(response.Headers.Location?.ToString(), Is.EqualTo($"/api/conversations/{body.Long("conversationId")}"));
        Assert.That(body.Str("title"), Is.EqualTo("Weekend"));
        Assert.That(body.GetProperty("isGroup").GetBoolean(), Is.True);
        Assert.That(body.Long("lastSeq"), Is.Zero);
        Assert.That(body.GetProperty("lastMessageAt").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(body.Str("createdAt"), Does.Match(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"));
        Assert.That(Members(body), Is.EquivalentTo(new[] { alice.ExternalId, bob.ExternalId, carol.ExternalId }));
    }

    [TestCase("")]
    [TestCase("   ")]
    public async Task A_blank_title_is_no_title(string blank)
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var response = await http.PostAsJsonAsync("/api/conversations", new { title = blank, memberExternalIds = new[] { bob.ExternalId, carol.ExternalId } });

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        Assert.That((await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("title").ValueKind, Is.EqualTo(JsonValueKind.Null));
    }

    [Test]
    public async Task Text_comes_back_as_typed_not_as_unicode_escapes_as_on_the_websocket()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        const string title = "Café ☕ 😀 <b>&'\u2028";

        var response = await http.PostAsJsonAsync("/api/conversations", new { title, isGroup = true, memberExternalIds = new[] { bob.ExternalId } });
        var raw = await response.Content.ReadAsStringAsync();

        Assert.That(raw, Does.Contain("\"title\":\"Café ☕ 😀 <b>&'\u2028\""), "escaped only where JSON requires");
    }

    [Test]
    public async Task A_direct_conversation_between_the_same_two_people_is_created_once()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var aliceHttp = Gateway.CreateHttpClient(alice.ExternalId);
        using var bobHttp = Gateway.CreateHttpClient(bob.ExternalId);

        var first = await aliceHttp.PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { bob.ExternalId } });
        var second = await bobHttp.PostAsJsonAsync("/api/conversations", new { isGroup = false, memberExternalIds = new[] { alice.ExternalId } });

        Assert.That(first.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        Assert.That(second.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var (a, b) = (await first.Content.ReadFromJsonAsync<JsonElement>(), await second.Content.ReadFromJsonAsync<JsonElement>());
        Assert.That(b.Long("conversationId"), Is.EqualTo(a.Long("conversationId")));
        Assert.That(a.GetProperty("isGroup").GetBoolean(), Is.False);
    }

    [Test]
    public async Task Concurrent_requests_for_the_same_direct_conversation_get_one_conversation()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var aliceHttp = Gateway.CreateHttpClient(alice.ExternalId);
        using var bobHttp = Gateway.CreateHttpClient(bob.ExternalId);

        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => (i % 2 == 0 ? aliceHttp : bobHttp)
            .PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { i % 2 == 0 ? bob.ExternalId : alice.ExternalId } })));

        var ids = new HashSet<long>();
        foreach (var response in responses)
        {
            Assert.That(response.StatusCode, Is.AnyOf(HttpStatusCode.Created, HttpStatusCode.OK));
            ids.Add((await response.Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId"));
        }
        Assert.That(ids, Has.Count.EqualTo(1));
        Assert.That(responses.Count(r => r.StatusCode == HttpStatusCode.Created), Is.EqualTo(1));
    }

    [Test]
    public async Task Both_people_asking_at_once_for_a_direct_conversation_one_of_them_left_bring_them_back_once()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var aliceHttp = Gateway.CreateHttpClient(alice.ExternalId);
        using var bobHttp = Gateway.CreateHttpClient(bob.ExternalId);
        var conversation = (await (await aliceHttp.PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { bob.ExternalId } }))
            .Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId");
        Assert.That((await aliceHttp.DeleteAsync($"/api/conversations/{conversation}/members/{alice.ExternalId}")).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        var b = await ConnectAsync(bob);

        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => (i % 2 == 0 ? aliceHttp : bobHttp)
            .PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { i % 2 == 0 ? bob.ExternalId : alice.ExternalId } })));
        // Sent after every answer: the member frames, published before each answer, come before its ack.
        await b.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "after", content = "back together" });

        Assert.That(responses.Select(r => r.StatusCode), Is.All.EqualTo(HttpStatusCode.OK), "found, not created");
        foreach (var response in responses)
        {
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.That(body.Long("conversationId"), Is.EqualTo(conversation));
            Assert.That(Members(body), Is.EquivalentTo(new[] { alice.ExternalId, bob.ExternalId }));
        }
        var frames = await b.ReadThroughAnswerAsync("after");
        Assert.That(frames.Where(f => f.Type() == "member").Select(f => (f.Long("userId"), f.Str("change"))),
            Is.EqualTo(new[] { (alice.Id, "joined") }), "one return, told once");
    }

    [Test]
    public async Task A_direct_conversation_committed_by_another_request_during_this_one_is_returned_not_made_twice()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var aliceHttp = Gateway.CreateHttpClient(alice.ExternalId);
        // Another request's conversation, not committed yet: this request's insert waits on the direct key and,
        // once that commits, is skipped while its own snapshot cannot see the winner's row, so it must look again.
        await using var other = await TestDatabase.DataSource.OpenConnectionAsync();
        await using var transaction = await other.BeginTransactionAsync();
        var winner = await other.ExecuteScalarAsync<long>(
            "INSERT INTO conversations (is_group, direct_key) VALUES (false, @key) RETURNING id",
            new { key = $"{Math.Min(alice.Id, bob.Id)}:{Math.Max(alice.Id, bob.Id)}" }, transaction);
        await other.ExecuteAsync("INSERT INTO conversation_participants (conversation_id, user_id) VALUES (@winner, @alice), (@winner, @bob)",
            new { winner, alice = alice.Id, bob = bob.Id }, transaction);

        var creating = aliceHttp.PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { bob.ExternalId } });
        await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() == 1, "the request waits on the direct key");
        await transaction.CommitAsync();
        var response = await creating;

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), "found, not created");
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.That(body.Long("conversationId"), Is.EqualTo(winner));
        Assert.That(Members(body), Is.EquivalentTo(new[] { alice.ExternalId, bob.ExternalId }));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM conversation_participants WHERE user_id = @id", new { id = alice.Id }), Is.EqualTo(1),
            "no second conversation");
    }

    [Test]
    public async Task A_member_who_never_connected_gets_a_placeholder_profile_named_after_their_external_id()
    {
        var alice = await Gateway.CreateUserAsync();
        var newcomer = $"newcomer-{Guid.NewGuid():N}";
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var body = await (await http.PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { newcomer } })).Content.ReadFromJsonAsync<JsonElement>();

        var member = body.GetProperty("members").EnumerateArray().Single(m => m.Str("externalId") == newcomer);
        Assert.That(member.Str("displayName"), Is.EqualTo(newcomer));
        using var newcomerHttp = new HttpClient { BaseAddress = Gateway.HttpAddress };
        newcomerHttp.DefaultRequestHeaders.Authorization = new("Bearer", Gateway.TokenFor(newcomer, name: "Nina"));
        var me = await newcomerHttp.GetFromJsonAsync<JsonElement>("/api/users/me");
        Assert.That(me.Long("userId"), Is.EqualTo(member.Long("userId")));
        Assert.That(me.Str("displayName"), Is.EqualTo("Nina"), "the token's name replaces the placeholder");
    }

    [Test]
    public async Task A_token_without_a_name_keeps_the_name_the_user_already_has()
    {
        var externalId = $"named-{Guid.NewGuid():N}";
        using var named = new HttpClient { BaseAddress = Gateway.HttpAddress };
        named.DefaultRequestHeaders.Authorization = new("Bearer", Gateway.TokenFor(externalId, name: "Nina"));
        using var nameless = Gateway.CreateHttpClient(externalId);

        await named.GetFromJsonAsync<JsonElement>("/api/users/me");
        var me = await nameless.GetFromJsonAsync<JsonElement>("/api/users/me");

        Assert.That(me.Str("displayName"), Is.EqualTo("Nina"));
    }

    [TestCase("""{"memberExternalIds":"bob"}""", "memberExternalIds")]
    [TestCase("""{"memberExternalIds":[]}""", "memberExternalIds")]
    [TestCase("""{"memberExternalIds":[42]}""", "memberExternalIds")]
    [TestCase("""{}""", "memberExternalIds")]
    [TestCase("""{"memberExternalIds":["bob"],"title":7}""", "title")]
    [TestCase("""{"memberExternalIds":["bob"],"isGroup":"yes"}""", "isGroup")]
    [TestCase("""{"memberExternalIds":["bob","carol"],"isGroup":false}""", "memberExternalIds")]
    [TestCase("""{"memberExternalIds":["  "]}""", "memberExternalIds")]
    [TestCase("""{"memberExternalIds":["bob "]}""", "memberExternalIds")]
    [TestCase("""{"memberExternalIds":["bob"],"title":"\ud800"}""", "title")]
    [TestCase("""{"memberExternalIds":["bob"],"title":"a","title":"b"}""", "title")]
    [TestCase("""[1,2]""", "body")]
    [TestCase("""{"memberExternalIds":""", "body")]
    public async Task An_invalid_body_answers_400_naming_the_field(string json, string field)
    {
        var alice = await Gateway.CreateUserAsync();
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var response = await http.PostAsync("/api/conversations", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"));
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.That(problem.GetProperty("errors").TryGetProperty(field, out _), Is.True, problem.ToString());
        Assert.That(problem.Str("detail"), Does.Contain(field), "the detail names the field too");
    }

    // The body is JSON whatever the header says: a client that forgets the header, or a form that posts text, is
    // not refused with 415 for it.
    [TestCase("text/plain")]
    [TestCase("application/x-www-form-urlencoded")]
    [TestCase(null)]
    public async Task The_body_is_read_as_JSON_whatever_its_content_type_says(string? mediaType)
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var content = new StringContent($$"""{"memberExternalIds":["{{bob.ExternalId}}"],"isGroup":true}""");
        content.Headers.ContentType = mediaType is null ? null : new(mediaType);

        using var created = await http.PostAsync("/api/conversations", content);
        var conversation = (await created.Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId");
        using var added = await http.PostAsync($"/api/conversations/{conversation}/members",
            new StringContent($$"""{"externalId":"{{carol.ExternalId}}"}""", null, mediaType ?? "text/plain"));

        Assert.That((created.StatusCode, added.StatusCode), Is.EqualTo((HttpStatusCode.Created, HttpStatusCode.Created)));
        Assert.That(created.Content.Headers.ContentType?.ToString(), Is.EqualTo("application/json; charset=utf-8"));
    }

    [Test]
    public async Task Naming_only_oneself_is_refused()
    {
        var alice = await Gateway.CreateUserAsync();
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var response = await http.PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { alice.ExternalId } });

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
    }

    [Test]
    public async Task Every_resource_that_answers_GET_answers_HEAD_with_the_same_status_and_no_body()
    {
        var (alice, bob, stranger) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        using var member = Gateway.CreateHttpClient(alice.ExternalId);
        using var outsider = Gateway.CreateHttpClient(stranger.ExternalId);
        using var anonymous = Gateway.CreateHttpClient();

        (HttpClient Client, string Path)[] asked =
        [
            (member, "/api/users/me"),
            (member, "/api/conversations"),
            (member, $"/api/conversations/{conversation}"),
            (member, $"/api/conversations/{conversation}/messages"),
            (member, "/api/conversations?limit=0"),
            (outsider, $"/api/conversations/{conversation}"),
            (anonymous, "/api/conversations"),
        ];
        foreach (var (client, path) in asked)
        {
            using var get = await client.GetAsync(path);
            using var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, path));

            Assert.That(head.StatusCode, Is.EqualTo(get.StatusCode), path);
            Assert.That(head.Content.Headers.ContentType?.MediaType, Is.EqualTo(get.Content.Headers.ContentType?.MediaType), path);
            Assert.That(await head.Content.ReadAsByteArrayAsync(), Is.Empty, path);
        }
    }

    [Test]
    public async Task The_list_shows_newest_activity_first_with_preview_and_the_callers_unread_count()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var older = await Gateway.CreateConversationAsync(alice, bob);
        var newer = await Gateway.CreateConversationAsync(alice, bob);
        var b = await ConnectAsync(bob);
        await b.SendMessageAsync(newer, "first");
        await b.SendMessageAsync(older, "latest news");
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var page = await http.GetFromJsonAsync<JsonElement>("/api/conversations");

        var items = page.GetProperty("items").EnumerateArray().ToList();
        Assert.That(items.Select(i => i.Long("conversationId")), Is.EqualTo(new[] { older, newer }));
        Assert.That(items[0].Str("lastMessagePreview"), Is.EqualTo("latest news"));
        Assert.That((items[0].Long("lastMessageSenderId"), items[0].Str("lastMessageSenderName")), Is.EqualTo((bob.Id, bob.Name)));
        Assert.That(items[0].Long("lastSeq"), Is.EqualTo(1));
        Assert.That(items[0].GetProperty("unreadCount").GetInt32(), Is.EqualTo(1));
        Assert.That(items[0].Str("lastMessageAt"), Does.EndWith("Z"));
        Assert.That(Members(items[0]), Is.EquivalentTo(new[] { alice.ExternalId, bob.ExternalId }));
        Assert.That(items[0].GetProperty("memberCount").GetInt32(), Is.EqualTo(2));
        Assert.That(items[0].GetProperty("members")[0].TryGetProperty("presenceStatus", out _), Is.False, "presence is in the detail only");
        Assert.That(page.GetProperty("nextCursor").ValueKind, Is.EqualTo(JsonValueKind.Null));
    }

    [Test]
    public async Task A_large_group_in_the_list_carries_its_member_count_and_its_first_ten_members_and_the_detail_all_of_them()
    {
        var users = await Gateway.CreateUsersAsync(12);
        var id = await Gateway.CreateConversationAsync(users);
        var leaver = users[5];
        using (var leaving = Gateway.CreateHttpClient(leaver.ExternalId))
        {
            Assert.That((await leaving.DeleteAsync($"/api/conversations/{id}/members/{leaver.ExternalId}")).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        }
        using var http = Gateway.CreateHttpClient(users[11].ExternalId);
        var active = users.Where(u => u != leaver).OrderBy(u => u.Id).Select(u => u.ExternalId).ToList();

        var listed = (await http.GetFromJsonAsync<JsonElement>("/api/conversations")).GetProperty("items").EnumerateArray().Single(c => c.Long("conversationId") == id);
        var detail = await http.GetFromJsonAsync<JsonElement>($"/api/conversations/{id}");

        Assert.That(listed.GetProperty("memberCount").GetInt32(), Is.EqualTo(11));
        Assert.That(Members(listed), Is.EqualTo(active.Take(10)), "the first ten active members, by user id");
        Assert.That(detail.GetProperty("memberCount").GetInt32(), Is.EqualTo(11));
        Assert.That(Members(detail), Is.EqualTo(active));
    }

    [Test]
    public async Task The_list_pages_with_a_cursor_without_repeating_or_skipping()
    {
        var (alice, _, created) = await ConversationsOfTwoAsync(7);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var (seen, pages) = await ReadAllPagesAsync(http, limit: 3);

        Assert.That(pages, Is.EqualTo(3));
        Assert.That(seen, Is.EqualTo(created.AsEnumerable().Reverse().ToList()));
    }

    [Test]
    public async Task Conversations_with_the_same_activity_time_page_by_id_without_repeating_or_skipping()
    {
        var (alice, _, created) = await ConversationsOfTwoAsync(5);
        // One batch stores messages to several conversations with one statement time: ties are ordinary.
        await Sql.ExecuteAsync("UPDATE conversations SET last_message_at = '2025-06-01T09:30:01.123456Z' WHERE id = ANY(@created)", new { created });
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var (seen, pages) = await ReadAllPagesAsync(http, limit: 2);

        Assert.That(pages, Is.EqualTo(3));
        Assert.That(seen, Is.EqualTo(created.OrderDescending().ToList()), "ties by descending id, each once");
    }

    [Test]
    public async Task Conversations_created_or_moved_to_the_top_between_pages_leave_the_next_pages_as_they_were()
    {
        var (alice, bob, c) = await ConversationsOfTwoAsync(7);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var (first, cursor) = await ReadPageAsync(http, limit: 3, cursor: null);
        Assert.That(first, Is.EqualTo(new[] { c[6], c[5], c[4] }));

        var b = await ConnectAsync(bob);
        await b.SendMessageAsync(c[5], "on a page already read");
        await b.SendMessageAsync(c[1], "on a page not read yet");
        await Gateway.CreateConversationAsync(alice, bob);
        var (second, next) = await ReadPageAsync(http, limit: 3, cursor: cursor);

        // Keyset pages: what moved above the cursor is on the first page of a new listing, not on this one, and
        // everything else keeps its place. So a conversation read before it moved is not repeated, and one that
        // moved before its page was read is on neither (the documented "both or neither").
        Assert.That(second, Is.EqualTo(new[] { c[3], c[2], c[0] }));
        Assert.That(next, Is.Null);
        var (fresh, _) = await ReadPageAsync(http, limit: 3, cursor: null);
        Assert.That(fresh.Skip(1), Is.EqualTo(new[] { c[1], c[5] }), "a new listing shows the moved ones on top, after the new conversation");
    }

    [TestCase("limit=0", "limit")]
    [TestCase("limit=101", "limit")]
    [TestCase("limit=ten", "limit")]
    [TestCase("cursor=not-a-cursor", "cursor")]
    [TestCase("cursor=a&cursor=b", "cursor")]
    public async Task Bad_list_parameters_answer_400_naming_them(string query, string field)
    {
        var alice = await Gateway.CreateUserAsync();
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var response = await http.GetAsync($"/api/conversations?{query}");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.That(problem.GetProperty("errors").TryGetProperty(field, out _), Is.True, problem.ToString());
        Assert.That(problem.Str("detail"), Does.Contain(field), "the detail names the parameter too");
    }

    [Test]
    public async Task The_detail_shows_each_members_current_presence()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var b = await ConnectAsync(bob);
        await b.SendAsync(new { type = "presence", presenceStatus = "busy" });
        // Frames are handled in order: once the answer to the next one is back, the status is set.
        await b.SendAsync(new { type = "nonsense" });
        await b.NextAsync("error");
        await ConnectAsync(alice);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var detail = await http.GetFromJsonAsync<JsonElement>($"/api/conversations/{conversation}");

        var presence = detail.GetProperty("members").EnumerateArray().ToDictionary(m => m.Str("externalId")!, m => m.Str("presenceStatus"));
        Assert.That(presence[alice.ExternalId], Is.EqualTo("online"));
        Assert.That(presence[bob.ExternalId], Is.EqualTo("busy"));
        Assert.That(presence[carol.ExternalId], Is.EqualTo("offline"));
    }

    [Test]
    public async Task Me_returns_the_callers_profile_and_no_token_answers_401()
    {
        var alice = await Gateway.CreateUserAsync();
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        using var anonymous = Gateway.CreateHttpClient();

        var me = await http.GetFromJsonAsync<JsonElement>("/api/users/me");
        var refused = await anonymous.GetAsync("/api/users/me");

        Assert.That(me.Long("userId"), Is.EqualTo(alice.Id));
        Assert.That(me.Str("externalId"), Is.EqualTo(alice.ExternalId));
        Assert.That(refused.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(refused.Headers.WwwAuthenticate.ToString(), Does.StartWith("Bearer"));
    }

    [TestCase(false, TestName = "Every_conversation_endpoint_answers_404_to_a_non_member_exactly_as_for_a_missing_conversation")]
    [TestCase(true, TestName = "Every_conversation_endpoint_answers_404_to_a_member_who_left_exactly_as_for_a_missing_conversation")]
    public async Task Every_conversation_endpoint_answers_404_to_a_non_member(bool leftBefore)
    {
        var (alice, bob, mallory) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = leftBefore
            ? await Gateway.CreateConversationAsync(alice, bob, mallory)
            : await Gateway.CreateConversationAsync(alice, bob, await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(mallory.ExternalId);
        if (leftBefore)
        {
            Assert.That((await http.DeleteAsync($"/api/conversations/{conversation}/members/{mallory.ExternalId}")).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        }

        foreach (var id in new[] { conversation, long.MaxValue })
        {
            var responses = new[]
            {
                await http.GetAsync($"/api/conversations/{id}"),
                await http.GetAsync($"/api/conversations/{id}/messages"),
                await http.GetAsync($"/api/conversations/{id}/messages?afterSeq=0&beforeSeq=5"),
                await http.PostAsJsonAsync($"/api/conversations/{id}/members", new { externalId = mallory.ExternalId }),
                await http.DeleteAsync($"/api/conversations/{id}/members/{bob.ExternalId}"),
                await http.DeleteAsync($"/api/conversations/{id}/members/{mallory.ExternalId}"),
                await http.DeleteAsync($"/api/conversations/{id}/members/nobody-{Guid.NewGuid():N}"),
            };
            foreach (var response in responses)
            {
                Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound), $"{response.RequestMessage!.Method} {response.RequestMessage.RequestUri}");
                Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"));
                Assert.That((await response.Content.ReadFromJsonAsync<JsonElement>()).Str("detail"), Is.EqualTo($"Conversation {id} was not found."));
            }
            foreach (var path in new[] { $"/api/conversations/{id}", $"/api/conversations/{id}/messages" })
            {
                using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, path));
                Assert.That(head.StatusCode, Is.EqualTo(HttpStatusCode.NotFound), $"HEAD {path}");
            }
        }
        Assert.That(await Sql.ScalarAsync<long>(
            "SELECT count(*) FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @user AND is_active",
            new { conversation, user = mallory.Id }), Is.Zero);
        using var list = Gateway.CreateHttpClient(mallory.ExternalId);
        var page = await list.GetFromJsonAsync<JsonElement>("/api/conversations");
        Assert.That(page.GetProperty("items").EnumerateArray().Select(i => i.Long("conversationId")), Does.Not.Contain(conversation));
    }

    [Test]
    public async Task A_conversation_id_that_is_not_a_number_answers_400()
    {
        var alice = await Gateway.CreateUserAsync();
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        var response = await http.GetAsync("/api/conversations/abc");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That((await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").TryGetProperty("id", out _), Is.True);
    }

    /// <summary>Two users and <paramref name="count"/> conversations of theirs, oldest first.</summary>
    private async Task<(TestUser Alice, TestUser Bob, List<long> Conversations)> ConversationsOfTwoAsync(int count)
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var created = new List<long>();
        for (var i = 0; i < count; i++)
        {
            created.Add(await Gateway.CreateConversationAsync(alice, bob));
        }
        return (alice, bob, created);
    }

    /// <summary>One page of the list: its conversation ids and its <c>nextCursor</c>.</summary>
    private static async Task<(List<long> Ids, string? NextCursor)> ReadPageAsync(HttpClient http, int limit, string? cursor)
    {
        var page = await http.GetFromJsonAsync<JsonElement>($"/api/conversations?limit={limit}{(cursor is null ? "" : $"&cursor={cursor}")}");
        return ([.. page.GetProperty("items").EnumerateArray().Select(i => i.Long("conversationId"))], page.GetProperty("nextCursor").GetString());
    }

    /// <summary>Every page of the list, following <c>nextCursor</c> to the end.</summary>
    private static async Task<(List<long> Ids, int Pages)> ReadAllPagesAsync(HttpClient http, int limit)
    {
        var seen = new List<long>();
        string? cursor = null;
        var pages = 0;
        do
        {
            (var ids, cursor) = await ReadPageAsync(http, limit, cursor);
            seen.AddRange(ids);
            pages++;
        }
        while (cursor is not null);
        return (seen, pages);
    }

    internal static IEnumerable<string?> Members(JsonElement conversation) =>
        conversation.GetProperty("members").EnumerateArray().Select(m => m.Str("externalId"));
}
