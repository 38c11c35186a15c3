using System.Net;
using Chat.Tests.Infrastructure;
using Dapper;

namespace Chat.Tests.Api;

/// <summary>
/// An endpoint's own database work, after the caller's profile was read, is bounded by
/// <c>Chat:Database:RequestTimeout</c> as that first read is: a database that stops answering in the middle of a
/// request (here: a table locked by a schema change) answers 503, not whenever the database answers again.
/// </summary>
public sealed class ApiDatabaseTimeoutTests : GatewayTest
{
    protected override Dictionary<string, string?> Settings => new() { ["Chat:Database:RequestTimeout"] = "00:00:02" };

    [TestCase("")]
    [TestCase("/{0}")]
    [TestCase("/{0}/messages")]
    public async Task A_read_that_waits_on_the_database_past_the_request_timeout_answers_503(string path)
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        // The caller's profile is read first, from another table: only the endpoint's own query waits.
        await http.GetAsync("/api/users/me");

        HttpResponseMessage response;
        await using (var connection = await TestDatabase.DataSource.OpenConnectionAsync())
        {
            await using var schemaChange = await connection.BeginTransactionAsync();
            await connection.ExecuteAsync("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE", transaction: schemaChange);
            var request = http.GetAsync("/api/conversations" + string.Format(System.Globalization.CultureInfo.InvariantCulture, path, conversation));
            // Far past the 2 s: a request that is still waiting then waits for the lock, and is answered when it goes.
            await Task.WhenAny(request, Task.Delay(TimeSpan.FromSeconds(20)));
            await schemaChange.RollbackAsync();
            response = await request;
        }

        var problem = await response.ProblemAsync(HttpStatusCode.ServiceUnavailable);
        Assert.That(problem.Str("detail"), Is.EqualTo("The database is unavailable; retry later."));
        Assert.That((await http.GetAsync($"/api/conversations/{conversation}")).StatusCode, Is.EqualTo(HttpStatusCode.OK), "once the database answers, so does the API");
    }
}
