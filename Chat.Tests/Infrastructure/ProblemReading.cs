using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Chat.Tests.Infrastructure;

/// <summary>Reading the HTTP API's problem answers (RFC 7807 <c>application/problem+json</c>).</summary>
public static class ProblemReading
{
    /// <summary>The problem, after checking that the answer has this status, the problem media type and the same status in its body.</summary>
    public static async Task<JsonElement> ProblemAsync(this HttpResponseMessage response, HttpStatusCode status)
    {
        Assert.That(response.StatusCode, Is.EqualTo(status), await response.Content.ReadAsStringAsync());
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"));
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.That(problem.GetProperty("status").GetInt32(), Is.EqualTo((int)status));
        return problem;
    }

    /// <summary>The messages of a 400's <c>errors</c> for one field.</summary>
    public static string[] Errors(this JsonElement problem, string field) =>
        [.. problem.GetProperty("errors").GetProperty(field).EnumerateArray().Select(e => e.GetString()!)];
}
