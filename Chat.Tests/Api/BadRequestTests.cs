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
}
