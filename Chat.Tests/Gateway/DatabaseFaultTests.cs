using System.Net;
using System.Text.Json;
using Chat.Data.Messages;
using Chat.Tests.Infrastructure;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Chat.Tests.Gateway;

/// <summary>A gateway whose database goes away and comes back, through a TCP relay the test controls.</summary>
public sealed class DatabaseFaultTests
{
    private const string GatewayApplicationName = "chat-gateway-under-fault";

    private TcpProxy _proxy = null!;
    private TestGateway _gateway = null!;

    [SetUp]
    public void StartGatewayBehindProxy()
    {
        var target = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString);
        _proxy = new TcpProxy(target.Host!, target.Port);
        var viaProxy = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString) { Host = "127.0.0.1", Port = _proxy.Port, Timeout = 3, ApplicationName = GatewayApplicationName };
        _gateway = new TestGateway(connectionString: viaProxy.ConnectionString).Start();
    }

    [TearDown]
    public async Task Stop()
    {
        await _gateway.DisposeAsync();
        await _proxy.DisposeAsync();
    }

    [Test]
    public async Task While_the_database_is_down_senders_get_internal_and_no_ack_and_readiness_is_503()
    {
        var (alice, bob) = (await _gateway.CreateUserAsync(), await _gateway.CreateUserAsync());
        var conversation = await _gateway.CreateConversationAsync(alice, bob);
        await using var a = await _gateway.ConnectAsync(alice);
        await using var b = await _gateway.ConnectAsync(bob);
        using var http = _gateway.CreateHttpClient();

        _proxy.Cut();
        var reply = await a.SendMessageAsync(conversation, "into the void", "outage-1");
        var ready = await http.GetAsync("/health/ready");
        var live = await http.GetAsync("/health/live");

        Assert.That(reply.Type(), Is.EqualTo("error"), "no ack for what was not committed");
        Assert.That(reply.Str("code"), Is.EqualTo("internal"));
        Assert.That(reply.Str("clientMessageId"), Is.EqualTo("outage-1"));
        Assert.That(ready.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That(live.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.Zero, "nothing half-written");

        _proxy.Restore();
        var retry = await a.SendMessageAsync(conversation, "into the void", "outage-1");

        Assert.That(retry.Type(), Is.EqualTo("ack"), "the gateway recovers by itself");
        Assert.That((await http.GetAsync("/health/ready")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(1));
        Assert.That((await b.NextAsync("message")).Str("content"), Is.EqualTo("into the void"));
    }

    [Test]
    public async Task Terminated_database_connections_are_retried_without_the_client_noticing()
    {
        var (alice, bob) = (await _gateway.CreateUserAsync(), await _gateway.CreateUserAsync());
        var conversation = await _gateway.CreateConversationAsync(alice, bob);
        await using var a = await _gateway.ConnectAsync(alice);
        await a.SendMessageAsync(conversation, "warm the pool");

        // Kill every pooled connection of this gateway's data source; the next command finds a dead one.
        var terminated = await Sql.ScalarAsync<long>(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = @name",
            new { name = GatewayApplicationName });
        Assert.That(terminated, Is.GreaterThan(0), "the gateway had pooled connections to kill");
        var acks = new List<string?>();
        for (var i = 0; i < 5; i++)
        {
            acks.Add((await a.SendMessageAsync(conversation, $"after {i}", $"after-{i}")).Type());
        }

        Assert.That(acks, Is.All.EqualTo("ack"));
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(6));
    }

    [Test]
    public async Task An_ack_lost_with_the_connection_is_recovered_by_retrying_with_the_same_key()
    {
        var (alice, bob) = (await _gateway.CreateUserAsync(), await _gateway.CreateUserAsync());
        var conversation = await _gateway.CreateConversationAsync(alice, bob);
        var messages = _gateway.Services.GetRequiredService<MessageRepository>();
        var message = new NewMessage(conversation, alice.Id, "lost-ack", "committed, then the line broke", "text", null, null, "committed");

        // The first attempt commits; its client never hears back. The retry must find it, not store it again.
        var first = (await messages.StoreBatchAsync([message], publishedUpTo: long.MaxValue, CancellationToken.None)).Single().Result;
        var retry = (await messages.StoreBatchAsync([message], publishedUpTo: first.MessageId, CancellationToken.None)).Single();

        Assert.That(first.Outcome, Is.EqualTo(StoreOutcome.Stored));
        Assert.That(retry.Result.Outcome, Is.EqualTo(StoreOutcome.Duplicate));
        Assert.That(retry.Result.MessageId, Is.EqualTo(first.MessageId));
        Assert.That(retry.Result.Seq, Is.EqualTo(first.Seq));
        Assert.That(retry.Twin, Is.Null, "the original was published: nothing to publish again");
        Assert.That(await Sql.MessageCountAsync(conversation), Is.EqualTo(1));
    }

    // Also on a writer that has published nothing yet: a gateway that has just started, whose first batch is cut off.
    [TestCase(true)]
    [TestCase(false)]
    public async Task A_batch_cut_off_after_its_commit_gets_no_ack_and_its_resend_is_answered_and_delivered_once(bool publishedBefore)
    {
        const int senders = 5;
        var users = await _gateway.CreateUsersAsync(senders + 1, "cut");
        var conversation = await _gateway.CreateConversationAsync(users);
        var clients = new List<ChatTestClient>();
        foreach (var user in users)
        {
            clients.Add(await _gateway.ConnectAsync(user));
        }
        await using var outsider = await _gateway.ConnectAsync(await _gateway.CreateUserAsync("outsider"));
        var reader = clients[senders];
        var keys = Enumerable.Range(0, senders).Select(i => $"cut-{i}").ToArray();
        var before = publishedBefore ? 1 : 0;
        if (publishedBefore)
        {
            await reader.SendMessageAsync(conversation, "before the fault", "warm");
            foreach (var sender in clients.Take(senders))
            {
                await sender.NextAsync("message");
            }
        }

        // The senders' messages form one batch, which reaches the database and waits there for the conversation's row.
        await using (var rowLock = await TestDatabase.DataSource.OpenConnectionAsync())
        {
            await using var holding = await rowLock.BeginTransactionAsync();
            await rowLock.ExecuteAsync("SELECT 1 FROM conversations WHERE id = @conversation FOR UPDATE", new { conversation }, holding);
            await using (var pause = await WriterPause.StartAsync(_gateway, outsider))
            {
                for (var i = 0; i < senders; i++)
                {
                    await clients[i].SendAsync(new { type = "message", conversationId = conversation, clientMessageId = keys[i], content = $"message {i}" });
                    await pause.WaitQueuedAsync(i + 1);
                }
            }
            await Eventually.TrueAsync(
                () => Sql.ScalarAsync<bool>(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = @name AND wait_event_type = 'Lock')",
                    new { name = GatewayApplicationName }),
                "the batch waits in the database");

            _proxy.Cut();
            for (var i = 0; i < senders; i++)
            {
                var answer = await clients[i].AnswerAsync(keys[i]);
                Assert.That((answer.Type(), answer.Str("code")), Is.EqualTo(("error", "internal")), "no ack while the outcome is unknown");
            }
            // The server goes on with the statement: once the row is free it commits, and the reply goes nowhere.
            await holding.RollbackAsync();
        }
        await Eventually.TrueAsync(async () => await Sql.MessageCountAsync(conversation) == before + senders, "the cut-off batch commits");
        _proxy.Restore();

        // The senders resend with their keys, again in one batch.
        await using (var pause = await WriterPause.StartAsync(_gateway, outsider))
        {
            for (var i = 0; i < senders; i++)
            {
                await clients[i].SendAsync(new { type = "message", conversationId = conversation, clientMessageId = keys[i], content = $"message {i}" });
                await pause.WaitQueuedAsync(i + 1);
            }
        }
        var stored = await Sql.QueryAsync<(long Id, long Seq, string Key)>(
            "SELECT id, seq, client_message_id FROM messages WHERE conversation_id = @conversation ORDER BY seq", new { conversation });
        Assert.That(stored.Select(m => m.Seq), Is.EqualTo(Enumerable.Range(1, before + senders).Select(i => (long)i)), "stored once, no gap");
        var frames = new List<List<JsonElement>>();
        for (var i = 0; i < senders; i++)
        {
            var received = await clients[i].ReadThroughAnswerAsync(keys[i]);
            var ack = received[^1];
            Assert.That(ack.Type(), Is.EqualTo("ack"));
            Assert.That((ack.Long("messageId"), ack.Long("seq")), Is.EqualTo((stored[before + i].Id, stored[before + i].Seq)), $"sender {i} gets the ack of the committed message");
            frames.Add(received);
        }
        frames.Add([]);
        for (var i = 0; i <= senders; i++)
        {
            var delivered = frames[i].Concat(await clients[i].CollectAsync(TimeSpan.FromMilliseconds(400))).Where(f => f.Type() == "message").ToList();
            var expected = Enumerable.Range(before + 1, senders).Where(seq => seq != before + 1 + i).Select(seq => (long)seq).ToList();
            Assert.That(delivered.Select(f => f.Long("seq")), Is.EqualTo(expected), $"member {i} receives each of the others' messages once, in order");
        }
        var unread = await Sql.QueryAsync<int>("SELECT unread_count FROM conversation_participants WHERE conversation_id = @conversation ORDER BY user_id", new { conversation });
        var expectedUnread = users.OrderBy(u => u.Id).Select(u => u == users[senders] ? senders : senders - 1 + before);
        Assert.That(unread, Is.EqualTo(expectedUnread), "each member counts the others' messages once");
        foreach (var client in clients)
        {
            await client.DisposeAsync();
        }
    }

}
