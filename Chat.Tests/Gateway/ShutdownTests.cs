using System.Net;
using System.Net.WebSockets;
using Chat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Chat.Tests.Gateway;

public sealed class ShutdownTests
{
    [Test]
    public async Task Shutdown_closes_every_socket_with_1001_and_every_ack_matches_a_stored_row()
    {
        await using var gateway = new TestGateway(new() { ["Chat:Shutdown:DrainDelay"] = "00:00:03" }).Start();
        var users = await gateway.CreateUsersAsync(10, "stop");
        var conversation = await gateway.CreateConversationAsync(users);
        var clients = new List<ChatTestClient>();
        foreach (var user in users)
        {
            clients.Add(await gateway.ConnectAsync(user));
        }
        using var http = gateway.CreateHttpClient();

        // Every client keeps sending without waiting for acks while the gateway stops under it.
        using var stopSending = new CancellationTokenSource();
        var senders = clients.Select((client, i) => Task.Run(async () =>
        {
            var sent = 0;
            try
            {
                while (!stopSending.IsCancellationRequested)
                {
                    await client.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = $"c{i}-{sent}", content = "busy" });
                    sent++;
                    await Task.Delay(2);
                }
            }
            catch (WebSocketException)
            {
                // The socket closed under the sender.
            }
            return sent;
        })).ToList();
        await Task.Delay(300);

        gateway.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
        var ready = await http.GetAsync("/health/ready");

        foreach (var client in clients)
        {
            await client.WaitClosedAsync(TimeSpan.FromSeconds(10));
        }
        stopSending.Cancel();
        await Task.WhenAll(senders);

        Assert.That(ready.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable), "readiness turns 503 at once");
        Assert.That(clients.Select(c => c.CloseStatus), Is.All.EqualTo(WebSocketCloseStatus.EndpointUnavailable));
        var acked = new HashSet<string>();
        foreach (var client in clients)
        {
            var frames = await client.CollectAsync(TimeSpan.FromMilliseconds(50), f => f.Type() == "ack");
            acked.UnionWith(frames.Select(f => f.Str("clientMessageId")!));
        }
        var stored = await Sql.QueryAsync<string>("SELECT client_message_id FROM messages WHERE conversation_id = @conversation", new { conversation });
        Assert.That(acked, Is.Not.Empty, "messages were flowing when the gateway stopped");
        Assert.That(stored, Is.EquivalentTo(acked), "every stored message was acknowledged and every ack names a stored message");

        // During the drain the listener is still up, and an upgrade is refused with 503.
        using var late = new ClientWebSocket();
        late.Options.CollectHttpResponseDetails = true;
        late.Options.SetRequestHeader("Authorization", "Bearer " + gateway.TokenFor(users[0].ExternalId));
        await Assert.ThatAsync(() => late.ConnectAsync(gateway.WebSocketAddress, CancellationToken.None), Throws.InstanceOf<WebSocketException>());
        Assert.That(late.HttpStatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }
    }

    [Test]
    public async Task Messages_waiting_for_the_writer_when_the_gateway_stops_are_stored_and_acknowledged_before_their_sockets_close()
    {
        await using var gateway = new TestGateway().Start();
        var users = await gateway.CreateUsersAsync(4, "drain");
        var conversation = await gateway.CreateConversationAsync(users);
        var clients = new List<ChatTestClient>();
        foreach (var user in users)
        {
            clients.Add(await gateway.ConnectAsync(user));
        }
        await using var outsider = await gateway.ConnectAsync(await gateway.CreateUserAsync("outsider"));

        var pause = await WriterPause.StartAsync(gateway, outsider);
        for (var i = 0; i < clients.Count; i++)
        {
            await clients[i].SendAsync(new { type = "message", conversationId = conversation, clientMessageId = $"last-{i}", content = "just in time" });
            await pause.WaitQueuedAsync(i + 1);
        }
        gateway.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
        await pause.DisposeAsync();

        for (var i = 0; i < clients.Count; i++)
        {
            var answer = await clients[i].AnswerAsync($"last-{i}");
            Assert.That(answer.Type(), Is.EqualTo("ack"), "the message in hand is stored and acknowledged");
            await clients[i].WaitClosedAsync();
            Assert.That(clients[i].CloseStatus, Is.EqualTo(WebSocketCloseStatus.EndpointUnavailable));
        }
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(clients.Count));
        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }
    }
}
