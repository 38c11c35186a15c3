using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Api;

/// <summary>
/// A group's creation with an <c>Idempotency-Key</c>: a client whose answer was lost asks again with the same key and
/// gets the group it made, not a second one.
/// </summary>
public sealed class IdempotentCreateTests : GatewayTest
{
    [Test]
    public async Task A_creation_repeated_with_its_key_answers_the_same_group_and_makes_no_second_one()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var b = await ConnectAsync(bob);
        var key = Guid.NewGuid().ToString();
        var body = new { title = "Weekend", memberExternalIds = new[] { bob.ExternalId, carol.ExternalId } };

        using var first = await PostAsync(http, key, body);
        using var again = await PostAsync(http, key, body);

        Assert.That(first.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        Assert.That(again.StatusCode, Is.EqualTo(HttpStatusCode.OK), "found, not created");
        var id = (await first.Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId");
        var found = await again.Content.ReadFromJsonAsync<JsonElement>();
        Assert.That((found.Long("conversationId"), found.Str("title"), found.GetProperty("members").GetArrayLength()), Is.EqualTo((id, "Weekend", 3)));
        Assert.That(await Sql.ScalarAsync<long>(
            "SELECT count(*) FROM conversations c JOIN conversation_participants p ON p.conversation_id = c.id WHERE p.user_id = @bob", new { bob = bob.Id }), Is.EqualTo(1));
        var joined = await b.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() == "member");
        Assert.That(joined, Has.Count.EqualTo(3), "each member joined once: the repeat told nobody anything");
    }

    [Test]
    public async Task Requests_racing_with_one_key_make_one_group_which_every_answer_names()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var key = Guid.NewGuid().ToString();
        var body = new { memberExternalIds = new[] { bob.ExternalId, carol.ExternalId } };

        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => PostAsync(http, key, body)));

        Assert.That(answers.Count(a => a.StatusCode == HttpStatusCode.Created), Is.EqualTo(1));
        Assert.That(answers.Count(a => a.StatusCode == HttpStatusCode.OK), Is.EqualTo(5));
        var ids = await Task.WhenAll(answers.Select(async a => (await a.Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId")));
        Assert.That(ids.Distinct().Count(), Is.EqualTo(1));
        Assert.That(await Sql.ScalarAsync<long>(
            "SELECT count(*) FROM conversation_participants WHERE user_id = @bob", new { bob = bob.Id }), Is.EqualTo(1));
    }

    [Test]
    public async Task A_key_given_again_with_other_members_is_refused_with_422_and_changes_nothing()
    {
        var (alice, bob, carol, dave) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var key = Guid.NewGuid().ToString();
        using var first = await PostAsync(http, key, new { memberExternalIds = new[] { bob.ExternalId, carol.ExternalId } });

        using var other = await PostAsync(http, key, new { memberExternalIds = new[] { bob.ExternalId, dave.ExternalId } });

        Assert.That(first.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        var problem = await other.ProblemAsync(HttpStatusCode.UnprocessableEntity);
        // The request is compared by its members and title only: a keyed creation is always a group's, so the detail
        // names no other difference.
        Assert.That(problem.Str("detail"), Is.EqualTo(
            "The Idempotency-Key was used for another request (other members or another title); a key names one creation: use a new key for a new request."));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM conversation_participants WHERE user_id = @dave", new { dave = dave.Id }), Is.Zero);
    }

    [Test]
    public async Task The_same_key_from_two_users_makes_two_groups()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var key = Guid.NewGuid().ToString();
        using var fromAlice = Gateway.CreateHttpClient(alice.ExternalId);
        using var fromBob = Gateway.CreateHttpClient(bob.ExternalId);

        using var first = await PostAsync(fromAlice, key, new { memberExternalIds = new[] { bob.ExternalId, carol.ExternalId } });
        using var second = await PostAsync(fromBob, key, new { memberExternalIds = new[] { alice.ExternalId, carol.ExternalId } });

        Assert.That((first.StatusCode, second.StatusCode), Is.EqualTo((HttpStatusCode.Created, HttpStatusCode.Created)));
        Assert.That((await first.Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId"),
            Is.Not.EqualTo((await second.Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId")));
    }

    [Test]
    public async Task A_key_whose_group_the_caller_left_answers_409_and_makes_nothing()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var key = Guid.NewGuid().ToString();
        var body = new { memberExternalIds = new[] { bob.ExternalId, carol.ExternalId } };
        using var first = await PostAsync(http, key, body);
        var id = (await first.Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId");
        using var left = await http.DeleteAsync($"/api/conversations/{id}/members/{alice.ExternalId}");

        using var again = await PostAsync(http, key, body);

        Assert.That(left.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        await again.ProblemAsync(HttpStatusCode.Conflict);
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM conversation_participants WHERE user_id = @bob", new { bob = bob.Id }), Is.EqualTo(1));
    }

    [TestCase("", TestName = "An_empty_Idempotency_Key_is_refused_with_400_naming_it")]
    [TestCase("has space", TestName = "An_Idempotency_Key_with_a_space_is_refused_with_400_naming_it")]
    [TestCase("k-0123456789012345678901234567890123456789012345678901234567890123", TestName = "An_Idempotency_Key_of_65_characters_is_refused_with_400_naming_it")]
    public async Task A_bad_key_is_refused(string key)
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        using var response = await PostAsync(http, key, new { memberExternalIds = new[] { bob.ExternalId, carol.ExternalId } });

        var problem = await response.ProblemAsync(HttpStatusCode.BadRequest);
        Assert.That(problem.Errors("Idempotency-Key"), Is.EqualTo(new[] { "Idempotency-Key must be 1 to 64 visible ASCII characters (no spaces)." }));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM conversation_participants WHERE user_id = @bob", new { bob = bob.Id }), Is.Zero);
    }

    // A direct conversation is keyed by its two members already: the key changes nothing there.
    [Test]
    public async Task A_direct_conversation_asked_for_with_a_key_is_found_by_its_members_as_without_one()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        using var first = await PostAsync(http, "one-key", new { isGroup = false, memberExternalIds = new[] { bob.ExternalId } });
        using var second = await PostAsync(http, "another-key", new { isGroup = false, memberExternalIds = new[] { bob.ExternalId } });

        Assert.That((first.StatusCode, second.StatusCode), Is.EqualTo((HttpStatusCode.Created, HttpStatusCode.OK)));
    }

    private static Task<HttpResponseMessage> PostAsync(HttpClient http, string key, object body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/conversations") { Content = JsonContent.Create(body) };
        request.Headers.TryAddWithoutValidation("Idempotency-Key", key);
        return http.SendAsync(request);
    }
}
