using System.Collections.Concurrent;
using Chat.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Chat.Tests.Gateway;

/// <summary>
/// The handshake request lives as long as its socket: what it keeps is paid for by every idle connection, and
/// the access token should not stay in memory for the socket's life.
/// </summary>
public sealed class HandshakeRetentionTests
{
    private readonly ConcurrentQueue<HttpContext> _requests = new();
    private TestGateway _gateway = null!;

    [OneTimeSetUp]
    public void StartGateway() =>
        _gateway = new TestGateway(services: s => s.AddSingleton<IStartupFilter>(new RecordRequests(_requests))).Start();

    [OneTimeTearDown]
    public async Task StopGateway() => await _gateway.DisposeAsync();

    [TestCase(false, TestName = "An open socket keeps no copy of a token sent in the Authorization header")]
    [TestCase(true, TestName = "An open socket keeps no copy of a token sent in the access_token query parameter")]
    public async Task An_open_socket_keeps_no_copy_of_its_token(bool tokenInQuery)
    {
        _requests.Clear();
        var user = await _gateway.CreateUserAsync("retain");
        var token = _gateway.TokenFor(user.ExternalId);
        await using var client = await ChatTestClient.ConnectAsync(_gateway.WebSocketAddress, token, "catchup=false", tokenInQuery);
        await client.ReadUntilReadyAsync();

        // The test's one socket is the only request to /ws since the queue was cleared.
        var handshake = _requests.Single(r => r.Request.Path == "/ws");
        var request = handshake.Request;
        Assert.Multiple(() =>
        {
            Assert.That(request.Headers.Authorization.ToString(), Is.Empty);
            Assert.That(request.QueryString.HasValue, Is.False);
            Assert.That(request.Query, Is.Empty);
            Assert.That(handshake.Features.Get<IHttpRequestFeature>()!.RawTarget, Does.Not.Contain(token[..20]));
            Assert.That(request.Headers.Select(h => h.Value.ToString()), Has.None.Contains(token[..20]));
        });

        // The socket still works after the handshake's request let go of all that.
        var conversation = await _gateway.CreateConversationAsync(user, await _gateway.CreateUserAsync("retain"));
        var ack = await client.SendMessageAsync(conversation, "still here");
        Assert.That(ack.Type(), Is.EqualTo("ack"));
    }

    [Test]
    public async Task An_open_sockets_handshake_request_keeps_no_request_activity()
    {
        // The hosting layer starts an Activity (and a log scope) for each request whose diagnostics are logged;
        // the socket's request would keep them for its whole life.
        _requests.Clear();
        var user = await _gateway.CreateUserAsync("retain");
        await using var client = await ChatTestClient.ConnectAsync(_gateway.WebSocketAddress, _gateway.TokenFor(user.ExternalId), "catchup=false");
        await client.ReadUntilReadyAsync();

        var handshake = _requests.Single(r => r.Request.Path == "/ws");
        Assert.That(handshake.Features.Get<IHttpActivityFeature>(), Is.Null);
    }

    private sealed class RecordRequests(ConcurrentQueue<HttpContext> requests) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, following) =>
            {
                requests.Enqueue(context);
                return following(context);
            });
            next(app);
        };
    }
}
