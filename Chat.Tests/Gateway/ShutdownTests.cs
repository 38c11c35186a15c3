using Chat.Core.Connections;
using Chat.Core.Protocol;
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
            var frames = client.ReceivedBeforeClose(f => f.Type() == "ack");
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

    [Test]
    public async Task A_sync_held_up_by_a_client_that_stopped_reading_does_not_hold_off_the_shutdown()
    {
        const int Messages = 100;
        const int ContentLength = 100_000;
        await using var gateway = new TestGateway(new()
        {
            ["Chat:Limits:MaxFrameBytes"] = "262144",
            ["Chat:Limits:MaxContentLength"] = ContentLength.ToString(),
            ["Chat:Limits:CloseTimeout"] = "00:00:01",
            // Far beyond the test: it is not the keep-alive that ends the stalled socket.
            ["Chat:Limits:KeepAliveInterval"] = "00:10:00",
        }).Start();
        var (alice, sam) = (await gateway.CreateUserAsync(), await gateway.CreateUserAsync("stalled"));
        var conversation = await gateway.CreateConversationAsync(alice, sam);
        await using (var a = await gateway.ConnectAsync(alice))
        {
            for (var i = 0; i < Messages; i++)
            {
                Assert.That((await a.SendMessageAsync(conversation, new string('x', ContentLength), $"big-{i}")).Type(), Is.EqualTo("ack"));
            }
        }
        // A small receive buffer, so that the 10 MB reply backs up into the gateway's queue at once.
        await using var s = await ChatTestClient.ConnectAsync(gateway.WebSocketAddress, gateway.TokenFor(sam.ExternalId), "catchup=false", receiveBufferBytes: 4096);
        await s.ReadUntilReadyAsync();
        var registry = gateway.Services.GetRequiredService<ConnectionRegistry>();
        var connection = registry.Connections().Single(c => c.UserId == sam.Id);

        s.PauseReading();
        await s.SendAsync(new { type = "sync", conversationId = conversation, afterSeq = 0, limit = Messages });
        // Three of its frames wait in the queue's paced half: the sync waits for room the client never makes.
        await Eventually.TrueAsync(() => connection.QueuedBytes > 3 * ContentLength, "the sync waits for the stalled client");
        gateway.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();

        // The close frame cannot reach a client that does not read either: the socket goes after CloseTimeout.
        await Eventually.TrueAsync(() => registry.PresenceOf(sam.Id) == PresenceStatus.Offline, "the stalled socket is let go", TimeSpan.FromSeconds(5));
        s.ResumeReading();
        Assert.That(gateway.Logs.Lines.Where(l => l.Contains("frame failed")), Is.Empty, "a reply cut short by the close is no handler failure");
    }
}
