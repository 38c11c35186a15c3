using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Api;

/// <summary>What the API answers to a request it cannot take: a 400 whose detail says what to fix.</summary>
public sealed class BadRequestTests : GatewayTest
{
    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    [Test]
    public async Task A_400_has_a_detail_made_of_every_fields_message()
    {
        var alice = await Gateway.CreateUserAsync();
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        using var response = await http.PostAsync("/api/conversations", Json("""{"memberExternalIds":["bob", " carol"],"isGroup":"yes"}"""));
        var problem = await response.ProblemAsync(HttpStatusCode.BadRequest);

        Assert.That(problem.Errors("isGroup"), Is.EqualTo(new[] { "isGroup must be true or false." }));
        Assert.That(problem.Errors("memberExternalIds"), Is.EqualTo(new[] { "memberExternalIds[1] must not start or end with white space." }));
        Assert.That(problem.Str("detail"), Is.EqualTo("isGroup must be true or false. memberExternalIds[1] must not start or end with white space."));
    }

    // The id in the path follows the rule of one in a body: no user can have it, so it is a bad request, not a missing member.
    [TestCase("%20", "must not be blank")]
    [TestCase("%20bob", "must not start or end with white space")]
    [TestCase("a%01b", "must not hold control characters")]
    [TestCase("a%C2%85b", "must not hold control characters")]
    [TestCase("a%E2%80%AEb", "must not hold bidirectional control characters (U+202A to U+202E, U+2066 to U+2069)")]
    public async Task Removing_a_member_by_an_external_id_no_user_can_have_answers_400_naming_it(string escaped, string problem)
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        using var response = await http.DeleteAsync($"/api/conversations/{conversation}/members/{escaped}");
        var answer = await response.ProblemAsync(HttpStatusCode.BadRequest);

        Assert.That(answer.Errors("externalId").Single(), Does.EndWith($"{problem}."));
    }

    // A path resolves "." and ".." away (/members/.. is /), so a member with such an id could never be removed.
    [TestCase(".")]
    [TestCase("..")]
    public async Task An_external_id_of_dots_that_no_path_can_name_is_refused_in_a_body(string dots)
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        using var add = await http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = dots });
        using var create = await http.PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { bob.ExternalId, dots } });

        Assert.That((await add.ProblemAsync(HttpStatusCode.BadRequest)).Errors("externalId"),
            Is.EqualTo(new[] { "externalId must not be . or .. (no path segment can name them)." }));
        Assert.That((await create.ProblemAsync(HttpStatusCode.BadRequest)).Errors("memberExternalIds"),
            Is.EqualTo(new[] { "memberExternalIds[1] must not be . or .. (no path segment can name them)." }));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM user_profiles WHERE external_id = @dots", new { dots }), Is.Zero);
    }

    [TestCase(@"\ud800")]
    [TestCase(@"x\udc00y")]
    [TestCase(@"nul \u0000")]
    public async Task A_title_that_is_not_valid_text_is_named_as_such_not_as_a_wrong_type(string escaped)
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        using var response = await http.PostAsync("/api/conversations", Json($$"""{"memberExternalIds":["{{bob.ExternalId}}"],"title":"{{escaped}}"}"""));
        var problem = await response.ProblemAsync(HttpStatusCode.BadRequest);

        Assert.That(problem.Errors("title"), Is.EqualTo(new[] { "title must be valid text: no NUL character and no unpaired surrogate." }));
    }

    // A title is one line in every member's conversation list: a line break or a control character breaks it, and
    // an override character turns the text after it around, past the title's end in a client that does not isolate it.
    [TestCase(@"line\nbreak", "must not hold control characters")]
    [TestCase(@"tab\there", "must not hold control characters")]
    [TestCase(@"bell \u0007", "must not hold control characters")]
    [TestCase(@"next line \u0085", "must not hold control characters")]
    [TestCase(@"\u202egnp.exe", "must not hold bidirectional control characters (U+202A to U+202E, U+2066 to U+2069)")]
    [TestCase(@"isolate \u2067x", "must not hold bidirectional control characters (U+202A to U+202E, U+2066 to U+2069)")]
    public async Task A_title_with_a_control_or_bidirectional_control_character_answers_400_naming_it_and_creates_nothing(string escaped, string problem)
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        using var response = await http.PostAsync("/api/conversations", Json($$"""{"memberExternalIds":["{{bob.ExternalId}}"],"title":"{{escaped}}"}"""));
        var answer = await response.ProblemAsync(HttpStatusCode.BadRequest);

        Assert.That(answer.Errors("title"), Is.EqualTo(new[] { $"title {problem}." }));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM conversation_participants WHERE user_id = @user", new { user = alice.Id }), Is.Zero);
    }

    // Right-to-left letters carry their own direction; the marks U+200E / U+200F reorder nothing after them, and a
    // joiner builds an emoji: none of them is refused.
    [Test]
    public async Task A_title_in_right_to_left_script_with_direction_marks_and_joined_emoji_is_stored_as_sent()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        const string title = "\u05E9\u05DC\u05D5\u05DD \u200FTeam\u200E \U0001F468\u200D\U0001F469\u200D\U0001F467";

        using var response = await http.PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { bob.ExternalId }, title });

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created), await response.Content.ReadAsStringAsync());
        Assert.That(await Sql.ScalarAsync<string>(
            "SELECT c.title FROM conversations c JOIN conversation_participants p ON p.conversation_id = c.id WHERE p.user_id = @user", new { user = alice.Id }),
            Is.EqualTo(title));
    }

    [TestCase("""{"memberExternalIds":["m"],"title":"first","title":"second"}""", "title")]
    [TestCase("""{"memberExternalIds":["m"],"t\u0069tle":"escaped","title":"plain"}""", "title")]
    [TestCase("""{"memberExternalIds":["m"],"memberExternalIds":["n","o"]}""", "memberExternalIds")]
    [TestCase("""{"memberExternalIds":["m"],"extra":{"a":1,"a":2}}""", "extra.a")]
    public async Task Creating_a_conversation_with_a_property_sent_twice_answers_400_naming_it_and_creates_nothing(string json, string repeated)
    {
        var alice = await Gateway.CreateUserAsync();
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        using var response = await http.PostAsync("/api/conversations", Json(json));
        var problem = await response.ProblemAsync(HttpStatusCode.BadRequest);

        Assert.That(problem.Errors(repeated), Is.EqualTo(new[] { $"{repeated} appears more than once in the body; send each property once." }));
        Assert.That(problem.Str("detail"), Does.Contain(repeated));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM conversation_participants WHERE user_id = @user", new { user = alice.Id }), Is.Zero);
    }

    [Test]
    public async Task Adding_a_member_with_the_external_id_sent_twice_answers_400_naming_it_and_adds_nobody()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        using var response = await http.PostAsync($"/api/conversations/{conversation}/members", Json("""{"externalId":"dave","externalId":"erin"}"""));
        var problem = await response.ProblemAsync(HttpStatusCode.BadRequest);

        Assert.That(problem.Errors("externalId"), Is.EqualTo(new[] { "externalId appears more than once in the body; send each property once." }));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM conversation_participants WHERE conversation_id = @conversation", new { conversation }), Is.EqualTo(3));
    }

    [TestCase("""{"memberExternalIds":["m"],"\ud800":1}""")]
    [TestCase("""{"\ud800":1}""")]
    [TestCase("""{"\udc00":1,"\udc00":2,"memberExternalIds":["m"]}""")]
    public async Task A_property_name_that_is_not_valid_text_answers_400_not_500(string json)
    {
        var alice = await Gateway.CreateUserAsync();
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        using var response = await http.PostAsync("/api/conversations", Json(json));

        await response.ProblemAsync(HttpStatusCode.BadRequest);
    }

    [Test]
    public async Task A_body_that_is_not_UTF8_is_blamed_on_the_body_not_on_a_field()
    {
        var alice = await Gateway.CreateUserAsync();
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var body = new ByteArrayContent([.. Encoding.UTF8.GetBytes("""{"memberExternalIds":["m"],"title":" """), 0xFF, .. Encoding.UTF8.GetBytes("\"}")]);
        body.Headers.ContentType = new("application/json");

        using var response = await http.PostAsync("/api/conversations", body);
        var problem = await response.ProblemAsync(HttpStatusCode.BadRequest);

        Assert.That(problem.Errors("body"), Is.EqualTo(new[] { "The body is not valid UTF-8." }));
        Assert.That(problem.Str("detail"), Is.EqualTo("The body is not valid UTF-8."));
    }

    [Test]
    public async Task A_body_that_is_not_JSON_is_still_reported_as_such_and_not_as_a_repeated_property()
    {
        var alice = await Gateway.CreateUserAsync();
        using var http = Gateway.CreateHttpClient(alice.ExternalId);

        using var response = await http.PostAsync("/api/conversations", Json("""{"title":"a","title":"""));
        var problem = await response.ProblemAsync(HttpStatusCode.BadRequest);

        Assert.That(problem.Errors("body").Single(), Does.StartWith("The body is not valid JSON: "));
    }
}
