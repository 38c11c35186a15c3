using System.Net;
using Chat.Core.Limits;
using Chat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Chat.Tests.Hardening;

public sealed class ConnectionLimitTests : GatewayTest
{
    protected override Dictionary<string, string?> Settings => new() { ["Chat:Limits:MaxConnectionsPerUser"] = "3" };

    [Test]
    public async Task One_connection_more_than_the_per_user_limit_is_refused_with_429_and_a_freed_slot_is_reusable()
    {
        var user = await Gateway.CreateUserAsync();
        var clients = new List<ChatTestClient>();
        for (var i = 0; i < 3; i++)
        {
            clients.Add(await ConnectAsync(user));
        }

        var fourth = await Handshake.StatusAsync(Gateway.WebSocketAddress, Gateway.TokenFor(user.ExternalId), cause: "too many connections of one user");
        var otherUser = await Handshake.StatusAsync(Gateway.WebSocketAddress, Gateway.TokenFor((await Gateway.CreateUserAsync()).ExternalId));
        await clients[0].CloseAsync();
        var afterClose = await EventuallyAsync(() => Handshake.StatusAsync(Gateway.WebSocketAddress, Gateway.TokenFor(user.ExternalId)), HttpStatusCode.SwitchingProtocols);

        Assert.That(fourth, Is.EqualTo(HttpStatusCode.TooManyRequests));
        Assert.That(otherUser, Is.EqualTo(HttpStatusCode.SwitchingProtocols), "the limit is per user");
        Assert.That(afterClose, Is.EqualTo(HttpStatusCode.SwitchingProtocols));
    }

    [Test]
    public async Task Simultaneous_handshakes_cannot_slip_past_the_limit_together()
    {
        var user = await Gateway.CreateUserAsync();
        var token = Gateway.TokenFor(user.ExternalId);

        var attempts = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => Handshake.OpenAsync(Gateway.WebSocketAddress, token, "too many connections of one user")));
        try
        {
            Assert.That(attempts.Count(a => a.Status == HttpStatusCode.SwitchingProtocols), Is.EqualTo(3));
            Assert.That(attempts.Count(a => a.Status == HttpStatusCode.TooManyRequests), Is.EqualTo(9));
        }
        finally
        {
            foreach (var (socket, _) in attempts)
            {
                socket.Abort();
                socket.Dispose();
            }
        }
    }

    [Test]
    public async Task Closed_connections_leave_no_count_behind()
    {
        var users = await Gateway.CreateUsersAsync(5);
        foreach (var user in users)
        {
            var client = await Gateway.ConnectAsync(user);
            await client.CloseAsync();
            await client.DisposeAsync();
        }
        var limiter = Gateway.Services.GetRequiredService<UserConnectionLimiter>();

        Assert.That(await EventuallyAsync(() => Task.FromResult(limiter.UserCount), 0), Is.Zero);
    }

    /// <summary>Polls until <paramref name="probe"/> gives <paramref name="expected"/> (a socket's slot is freed once its close completes), or 5 s pass.</summary>
    internal static async Task<T> EventuallyAsync<T>(Func<Task<T>> probe, T expected)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (true)
        {
            var value = await probe();
            if (EqualityComparer<T>.Default.Equals(value, expected) || DateTime.UtcNow > deadline)
            {
                return value;
            }
            await Task.Delay(50);
        }
    }
}
