using System.Net;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Api;

/// <summary>What the gateway answers to a path no endpoint serves, or a method a path does not answer.</summary>
public sealed class UnroutedRequestTests : GatewayTest
{
    [TestCase("/api/nothing")]
    [TestCase("/api/conversations/1/nothing")]
    [TestCase("/nothing")]
    public async Task A_path_no_endpoint_serves_answers_404_with_a_problem_of_type_about_blank(string path)
    {
        using var anonymous = Gateway.CreateHttpClient();
        using var authenticated = Gateway.CreateHttpClient((await Gateway.CreateUserAsync()).ExternalId);

        foreach (var http in new[] { anonymous, authenticated })
        {
            using var response = await http.GetAsync(path);
            var problem = await response.ProblemAsync(HttpStatusCode.NotFound);

            Assert.That(problem.Str("type"), Is.EqualTo("about:blank"));
            Assert.That(problem.Str("title"), Is.EqualTo("Not Found"));
            Assert.That(problem.Str("detail"), Is.EqualTo($"No endpoint serves {path}."));
        }
    }

    [TestCase("POST", "/api/users/me", "GET, HEAD")]
    [TestCase("DELETE", "/api/conversations", "GET, HEAD, POST")]
    [TestCase("PUT", "/api/conversations/1/members", "POST")]
    [TestCase("GET", "/api/conversations/1/members/bob", "DELETE")]
    [TestCase("POST", "/health/live", "GET, HEAD")]
    public async Task A_method_a_path_does_not_answer_gets_405_with_a_problem_and_the_allow_header(string method, string path, string allow)
    {
        using var http = Gateway.CreateHttpClient((await Gateway.CreateUserAsync()).ExternalId);

        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        using var response = await http.SendAsync(request);
        var problem = await response.ProblemAsync(HttpStatusCode.MethodNotAllowed);

        Assert.That(string.Join(", ", response.Content.Headers.Allow), Is.EqualTo(allow));
        Assert.That(problem.Str("type"), Is.EqualTo("about:blank"));
        Assert.That(problem.Str("title"), Is.EqualTo("Method Not Allowed"));
        Assert.That(problem.Str("detail"), Is.EqualTo($"{path} does not answer {method}; it answers {allow}."));
    }

    [Test]
    public async Task The_APIs_own_404_keeps_its_type_so_that_clients_tell_it_from_a_wrong_address()
    {
        using var http = Gateway.CreateHttpClient((await Gateway.CreateUserAsync()).ExternalId);

        using var response = await http.GetAsync($"/api/conversations/{long.MaxValue}");
        var problem = await response.ProblemAsync(HttpStatusCode.NotFound);

        Assert.That(problem.Str("type"), Is.EqualTo("https://tools.ietf.org/html/rfc9110#section-15.5.5"));
    }

    [Test]
    public async Task A_refused_token_the_socket_health_and_metrics_answer_as_before()
    {
        using var anonymous = Gateway.CreateHttpClient();

        using var api = await anonymous.GetAsync("/api/users/me");
        using var socket = await anonymous.GetAsync("/ws");
        using var live = await anonymous.GetAsync("/health/live");
        using var metrics = await anonymous.GetAsync("/metrics");

        Assert.That((api.StatusCode, await api.Content.ReadAsStringAsync()), Is.EqualTo((HttpStatusCode.Unauthorized, "")), "a refused token has no body");
        Assert.That((socket.StatusCode, await socket.Content.ReadAsStringAsync()), Is.EqualTo((HttpStatusCode.Unauthorized, "")));
        Assert.That((live.StatusCode, live.Content.Headers.ContentType?.MediaType), Is.EqualTo((HttpStatusCode.OK, "application/json")));
        Assert.That((metrics.StatusCode, metrics.Content.Headers.ContentType?.MediaType), Is.EqualTo((HttpStatusCode.OK, "text/plain")));
        var client = await ConnectAsync(await Gateway.CreateUserAsync());
        Assert.That(client.Welcome.Str("type"), Is.EqualTo("welcome"));
    }
}
