using System.Net;
using System.Net.Http.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Api;

/// <summary>A fault that no endpoint expected: a bug, or a statement the database refused for a reason of its own.</summary>
public sealed class UnexpectedFailureTests : GatewayTest
{
    // A trigger makes PostgreSQL refuse one conversation's creation with an error that is neither an outage nor the
    // operator's (SQLSTATE P0001): the endpoint has no answer of its own for it.
    private const string InjectFailureSql = """
        CREATE OR REPLACE FUNCTION test_refuse_conversation() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.title LIKE 'refused-by-trigger-%' THEN RAISE EXCEPTION 'injected failure: secret detail'; END IF;
            RETURN NEW;
        END $$;
        CREATE OR REPLACE TRIGGER test_refuse_conversation BEFORE INSERT ON conversations
            FOR EACH ROW EXECUTE FUNCTION test_refuse_conversation();
        """;

    [Test]
    public async Task An_unexpected_failure_is_answered_500_as_a_problem_without_its_details_and_logged()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        await Sql.ExecuteAsync(InjectFailureSql);
        HttpResponseMessage response;
        try
        {
            response = await http.PostAsJsonAsync("/api/conversations",
                new { title = "refused-by-trigger-" + Guid.NewGuid().ToString("N"), isGroup = true, memberExternalIds = new[] { bob.ExternalId } });
        }
        finally
        {
            await Sql.ExecuteAsync("DROP TRIGGER IF EXISTS test_refuse_conversation ON conversations; DROP FUNCTION IF EXISTS test_refuse_conversation()");
        }

        var problem = await response.ProblemAsync(HttpStatusCode.InternalServerError);
        Assert.That(problem.Str("title"), Is.Not.Empty);
        Assert.That(problem.Str("type"), Is.Not.Empty);
        Assert.That(problem.ToString(), Does.Not.Contain("secret detail").And.Not.Contain("P0001").And.Not.Contain("   at "));
        Assert.That(Gateway.Logs.Lines, Has.Some.Contains("injected failure: secret detail"), "the operator sees what failed");

        // The gateway goes on serving.
        using var again = await http.PostAsJsonAsync("/api/conversations", new { isGroup = true, memberExternalIds = new[] { bob.ExternalId } });
        Assert.That(again.StatusCode, Is.EqualTo(HttpStatusCode.Created));
    }
}
