using System.Net;
using System.Net.Http.Json;
using Chat.Core.Protocol;
using Chat.Tests.Infrastructure;
using Npgsql;

namespace Chat.Tests.Hardening;

/// <summary>The database goes away under load, through a relay the test controls, and comes back.</summary>
public sealed class DatabaseOutageTests
{
    private const string ApplicationName = "chat-gateway-outage";
    private const int Senders = 8;

    /// <summary>Acks each sender gets before the outage, and again after it, before the test moves on.</summary>
    private const int SettledAcks = 100;
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(200);

    private TcpProxy _proxy = null!;
    private TestGateway _gateway = null!;

    [SetUp]
    public void StartGatewayBehindProxy()
    {
        var target = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString);
        _proxy = new TcpProxy(target.Host!, target.Port);
        var viaProxy = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString)
        {
            Host = "127.0.0.1", Port = _proxy.Port, Timeout = 2, ApplicationName = ApplicationName,
        };
        _gateway = new TestGateway(connectionString: viaProxy.ConnectionString).Start();
    }

    [TearDown]
    public async Task Stop()
    {
        await _gateway.DisposeAsync();
        await _proxy.DisposeAsync();
    }

    [Test]
    public async Task A_ten_second_outage_under_load_acks_only_what_was_committed_and_every_retry_ends_with_one_row()
    {
        var (conversation, senders, clients, reader) = await LoadAsync();
        using var http = _gateway.CreateHttpClient();
        using var stop = new CancellationTokenSource();
        var running = senders.Select((s, i) => s.RunAsync(clients[i], stop.Token, RetryDelay)).ToList();

        // Load is flowing: every sender has been acknowledged many times (a fixed wait could end before a slow machine starts).
        await Eventually.TrueAsync(() => senders.All(s => s.Acked.Count >= SettledAcks), "every sender is in its stride before the outage");
        var ackedBefore = senders.Sum(s => s.Acked.Count);
        _proxy.Cut();
        ReliabilityReport.Ledger.FaultInjected("database unreachable for 10 s under load");
        await Task.Delay(3000);
        var readyDuring = await http.GetAsync("/health/ready");
        var liveDuring = await http.GetAsync("/health/live");
        var ackedDuring = senders.Sum(s => s.Acked.Count);
        await Task.Delay(3000);
        var ackedLater = senders.Sum(s => s.Acked.Count);
        await Task.Delay(4000);
        var atRestore = senders.Select(s => s.Acked.Count).ToArray();
        _proxy.Restore();
        // Sending resumes once the pool reconnects: wait until every sender is acknowledged again (none is then
        // waiting to resend), rather than for a fixed time.
        await Eventually.TrueAsync(() => senders.Select((s, i) => s.Acked.Count >= atRestore[i] + SettledAcks).All(resumed => resumed), "every sender is in its stride again after the outage", TimeSpan.FromSeconds(20));
        stop.Cancel();
        await Task.WhenAll(running);
        var readyAfter = await http.GetAsync("/health/ready");

        Assert.That(readyDuring.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That(liveDuring.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(readyAfter.StatusCode, Is.EqualTo(HttpStatusCode.OK), "back without a restart");
        Assert.That(ackedLater, Is.EqualTo(ackedDuring), "no ack while the database was away");
        Assert.That(senders.SelectMany(s => s.Errors), Is.Not.Empty.And.All.EqualTo("internal"));
        Assert.That(senders.Sum(s => s.Acked.Count), Is.GreaterThan(ackedLater), "sending resumed");
        await CheckOneRowPerAckAsync(conversation, senders, reader, "database outage under load (TCP cut)");
        Assert.That(ackedBefore, Is.Positive);
        ReliabilityReport.Ledger.FaultSurvived("database unreachable for 10 s under load");
    }

    [Test]
    public async Task Terminating_the_gateways_database_backends_under_load_loses_and_doubles_nothing()
    {
        var (conversation, senders, clients, reader) = await LoadAsync();
        using var stop = new CancellationTokenSource();
        var running = senders.Select((s, i) => s.RunAsync(clients[i], stop.Token, RetryDelay)).ToList();

        long terminated = 0;
        for (var round = 0; round < 8; round++)
        {
            await Task.Delay(250);
            // Only this gateway's backends, and only in this suite's own database.
            terminated += await Sql.ScalarAsync<long>(
                """
                SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE application_name = @name AND datname = current_database()
                """, new { name = ApplicationName });
        }
        await Task.Delay(500);
        stop.Cancel();
        await Task.WhenAll(running);

        Assert.That(terminated, Is.Positive, "backends were killed under load");
        Assert.That(senders.SelectMany(s => s.Errors), Is.All.EqualTo("internal"));
        await CheckOneRowPerAckAsync(conversation, senders, reader, "database backends terminated under load");
        ReliabilityReport.Ledger.FaultInjected("database backend terminated (pg_terminate_backend) under load", terminated);
        ReliabilityReport.Ledger.FaultSurvived("database backend terminated (pg_terminate_backend) under load", terminated);
    }

    [TestCase(0, TestName = "A_commit_whose_reply_is_lost_is_found_by_the_servers_own_retry_and_stored_once")]
    [TestCase(3000, TestName = "A_commit_whose_reply_is_lost_is_found_by_the_clients_retry_with_the_same_key_and_stored_once")]
    public async Task Connection_cut_right_after_commit(int outageMs)
    {
        var (alice, bob) = (await _gateway.CreateUserAsync(), await _gateway.CreateUserAsync());
        var conversation = await _gateway.CreateConversationAsync(alice, bob);
        await using var a = await _gateway.ConnectAsync(alice);
        await using var b = await _gateway.ConnectAsync(bob);
        await a.SendMessageAsync(conversation, "warm the pool");
        var key = "at-commit-" + Guid.NewGuid().ToString("N");

        // The INSERT reaches PostgreSQL and commits; its reply never reaches the gateway, whose line is then cut.
        _proxy.SwallowReplies();
        await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = key, content = "committed, reply lost" });
        var committed = await EventuallyAsync(() => Sql.ScalarAsync<long>("SELECT count(*) FROM messages WHERE client_message_id = @key", new { key }));
        _proxy.Cut();
        ReliabilityReport.Ledger.FaultInjected("database connection cut right after COMMIT");
        await Task.Delay(outageMs);
        _proxy.Restore();
        var answer = await a.NextAsync(f => f.Str("clientMessageId") == key);
        if (outageMs == 0)
        {
            Assert.That(answer.Type(), Is.EqualTo("ack"), "the line is back before the server's retries run out: one of them finds the commit");
        }
        else
        {
            // The outage outlasts the server's retries: the client is told to retry, and does, with the same key.
            Assert.That((answer.Type(), answer.Str("code")), Is.EqualTo(("error", "internal")));
            answer = await a.SendMessageAsync(conversation, "committed, reply lost", key);
        }
        var row = await Sql.QueryAsync<(long Id, long Seq)>("SELECT id, seq FROM messages WHERE client_message_id = @key", new { key });

        Assert.That(committed, Is.EqualTo(1));
        Assert.That(answer.Type(), Is.EqualTo("ack"));
        Assert.That(row, Has.Count.EqualTo(1), "one row, however many attempts");
        Assert.That(answer.Long("messageId"), Is.EqualTo(row[0].Id), "the ack names the committed row");
        Assert.That(answer.Long("seq"), Is.EqualTo(row[0].Seq));
        // Never published before, so the retry that found it publishes it: bob gets it live, once, and in catch-up.
        Assert.That((await b.NextAsync(f => f.Type() == "message" && f.Str("clientMessageId") == key)).Long("messageId"), Is.EqualTo(row[0].Id));
        Assert.That(await b.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() == "message" && f.Str("clientMessageId") == key), Is.Empty);
        await using var bobAgain = await _gateway.ConnectAsync(bob);
        Assert.That(bobAgain.Catchup.Select(m => m.Str("clientMessageId")), Does.Contain(key));
        ReliabilityReport.Ledger.FaultSurvived("database connection cut right after COMMIT");
        ReliabilityReport.Ledger.Messages("connection cut right after COMMIT", 1, 1, row.Count, 1, 0, row.Count - 1);
    }

    // The addition waits for the conversation's row, which the test holds, so that every query before it has been
    // answered; then the answers are swallowed, the row let go, and the line cut once the addition has committed.
    [Test]
    public async Task An_addition_whose_commit_reply_is_lost_is_answered_as_made_and_announced_to_the_members()
    {
        var (alice, bob, dave) = (await _gateway.CreateUserAsync(), await _gateway.CreateUserAsync(), await _gateway.CreateUserAsync());
        var conversation = await _gateway.CreateConversationAsync(alice, bob, await _gateway.CreateUserAsync());
        await using var a = await _gateway.ConnectAsync(alice);
        await using var d = await _gateway.ConnectAsync(dave);
        using var http = _gateway.CreateHttpClient(bob.ExternalId);

        var addition = await WithCommitReplyLostAsync(conversation,
            () => http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = dave.ExternalId }),
            "SELECT count(*) FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @user AND is_active",
            dave.Id);

        Assert.That(addition.StatusCode, Is.EqualTo(HttpStatusCode.Created), "the server's retry finds the addition it made");
        var joined = await a.NextAsync("member");
        Assert.That((joined.Long("userId"), joined.Str("change")), Is.EqualTo((dave.Id, "joined")));
        Assert.That(joined.Long("joinedSeq"), Is.EqualTo(await Sql.ScalarAsync<long>(
            "SELECT joined_seq FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @user", new { conversation, user = dave.Id })));
        Assert.That((await d.NextAsync("member")).Long("userId"), Is.EqualTo(dave.Id), "the new member's socket is told, and receives the conversation");
        await a.SendMessageAsync(conversation, "welcome, Dave");
        Assert.That((await d.NextAsync("message")).Str("content"), Is.EqualTo("welcome, Dave"));
        ReliabilityReport.Ledger.FaultSurvived("database connection cut right after a membership change's COMMIT");
    }

    // Leaving: the retry's actor is no longer a member, which must not read as "no such conversation".
    [Test]
    public async Task Leaving_with_the_commit_reply_lost_is_answered_as_done_announced_and_applied_to_the_leavers_sockets()
    {
        var (alice, bob, carol) = (await _gateway.CreateUserAsync(), await _gateway.CreateUserAsync(), await _gateway.CreateUserAsync());
        var conversation = await _gateway.CreateConversationAsync(alice, bob, carol);
        await using var a = await _gateway.ConnectAsync(alice);
        await using var c = await _gateway.ConnectAsync(carol);
        using var http = _gateway.CreateHttpClient(carol.ExternalId);

        var leaving = await WithCommitReplyLostAsync(conversation,
            () => http.DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}"),
            "SELECT count(*) FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @user AND NOT is_active",
            carol.Id);

        Assert.That(leaving.StatusCode, Is.EqualTo(HttpStatusCode.NoContent), "the server's retry finds the removal it made");
        var left = await a.NextAsync("member");
        Assert.That((left.Long("userId"), left.Str("change")), Is.EqualTo((carol.Id, "left")));
        await a.SendMessageAsync(conversation, "after carol left");
        var toCarol = await c.CollectAsync(TimeSpan.FromMilliseconds(500));
        Assert.That(toCarol.Where(f => f.Type() == "message"), Is.Empty, "her socket no longer receives the conversation");
        ReliabilityReport.Ledger.FaultSurvived("database connection cut right after a membership change's COMMIT");
    }

    // A receipt's transaction is committed by a COMMIT of its own, sent once its statements were answered: the relay
    // lets those answers through and loses the COMMIT's, and the line is cut once the move has committed. The
    // server's retry finds the position already at the message, moved by its own earlier attempt.
    [Test]
    public async Task A_read_whose_commit_reply_is_lost_is_announced_to_the_other_members_and_to_the_readers_other_devices()
    {
        var (alice, bob) = (await _gateway.CreateUserAsync(), await _gateway.CreateUserAsync());
        var conversation = await _gateway.CreateConversationAsync(alice, bob);
        await using var phone = await _gateway.ConnectAsync(alice);
        await using var laptop = await _gateway.ConnectAsync(alice);
        await using var b = await _gateway.ConnectAsync(bob);
        var ids = new List<long>();
        foreach (var content in new[] { "one", "two", "three" })
        {
            ids.Add((await b.SendMessageAsync(conversation, content)).Long("messageId"));
            await phone.NextAsync("message");
        }

        _proxy.SwallowRepliesFromCommit();
        await phone.SendAsync(new { type = "read", conversationId = conversation, messageId = ids[1] });
        var committed = await EventuallyAsync(() => Sql.ScalarAsync<long>(
            "SELECT count(*) FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @user AND last_read_message_id = @message",
            new { conversation, user = alice.Id, message = ids[1] }));
        _proxy.Cut();
        ReliabilityReport.Ledger.FaultInjected("database connection cut right after a read receipt's COMMIT");
        _proxy.Restore();

        Assert.That(committed, Is.EqualTo(1), "the receipt committed while its answer was lost");
        var toBob = await b.NextAsync("read");
        Assert.That((toBob.Long("senderId"), toBob.Long("messageId"), toBob.Long("seq")), Is.EqualTo((alice.Id, ids[1], 2L)), "the server's retry finds the move it made");
        Assert.That(toBob.TryGetProperty("unreadCount", out _), Is.False, "the count is the reader's own");
        var readAt = await Sql.ScalarAsync<DateTime>(
            "SELECT last_read_at FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @user", new { conversation, user = alice.Id });
        Assert.That(toBob.Str("timestamp"), Is.EqualTo(FrameWriter.FormatTime(readAt)), "the time of the move, not of the retry");
        var toLaptop = await laptop.NextAsync("read");
        Assert.That((toLaptop.Long("messageId"), toLaptop.Long("unreadCount")), Is.EqualTo((ids[1], 1L)), "the count as stored: the third message is left");
        Assert.That((toLaptop.Long("lastSeq"), toLaptop.Long("lastChangeSeq")), Is.EqualTo((3L, 0L)));
        Assert.That(await phone.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() is "read" or "error"), Is.Empty, "the reading device gets no answer, as ever");
        Assert.That(await Sql.UnreadCountAsync(conversation, alice.Id), Is.EqualTo(1));
        ReliabilityReport.Ledger.FaultSurvived("database connection cut right after a read receipt's COMMIT");
    }

    private async Task<HttpResponseMessage> WithCommitReplyLostAsync(long conversation, Func<Task<HttpResponseMessage>> request, string committedSql, long user)
    {
        Task<HttpResponseMessage> sent;
        await using (await Sql.HoldAsync("SELECT 1 FROM conversations WHERE id = @conversation FOR UPDATE", new { conversation }))
        {
            sent = request();
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() >= 1, "the change waits for the conversation's row");
            _proxy.SwallowReplies();
        }
        var committed = await EventuallyAsync(() => Sql.ScalarAsync<long>(committedSql, new { conversation, user }));
        _proxy.Cut();
        ReliabilityReport.Ledger.FaultInjected("database connection cut right after a membership change's COMMIT");
        _proxy.Restore();
        Assert.That(committed, Is.EqualTo(1), "the change committed while its answer was lost");
        return await sent;
    }

    private async Task<(long Conversation, SteadySender[] Senders, ChatTestClient[] Clients, ChatTestClient Reader)> LoadAsync()
    {
        var users = await _gateway.CreateUsersAsync(Senders + 1, "load");
        var conversation = await _gateway.CreateConversationAsync(users);
        var clients = new ChatTestClient[Senders];
        for (var i = 0; i < Senders; i++)
        {
            clients[i] = await _gateway.ConnectAsync(users[i]);
        }
        var reader = await _gateway.ConnectAsync(users[Senders]);
        var senders = Enumerable.Range(0, Senders).Select(i => new SteadySender(conversation, $"s{i}")).ToArray();
        return (conversation, senders, clients, reader);
    }

    /// <summary>
    /// Every ack names a stored row; every key sent is stored exactly once; the reader got no message twice. (Not
    /// every one: a message whose publication was lost with a failed batch is published on its resend only while no
    /// later one has been; otherwise the reader sees a gap in seq and fills it with sync, protocol §8.)
    /// </summary>
    private static async Task CheckOneRowPerAckAsync(long conversation, SteadySender[] senders, ChatTestClient reader, string scenario)
    {
        // Any key still in flight when the senders stopped is resent, as a reconnecting client would.
        foreach (var sender in senders.Where(s => s.InFlight is not null))
        {
            Assert.Fail($"a sender stopped with {sender.InFlight} unanswered");
        }
        var stored = await SteadySender.StoredAsync(conversation);
        var acked = senders.SelectMany(s => s.Acked).ToDictionary();
        var sent = senders.SelectMany(s => s.Sent).ToHashSet();
        var delivered = (await reader.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() == "message")).Select(f => f.Long("messageId")).ToList();

        var lost = acked.Count(p => !stored.TryGetValue(p.Key, out var row) || row.MessageId != p.Value.MessageId || row.Seq != p.Value.Seq);
        var duplicated = stored.Values.Sum(r => r.Rows - 1);
        Assert.That(lost, Is.Zero, "every ack names the row that was stored");
        Assert.That(duplicated, Is.Zero, "no key stored twice");
        Assert.That(stored.Keys, Is.EquivalentTo(sent), "every key sent was stored in the end, once");
        Assert.That(acked.Keys, Is.EquivalentTo(sent), "and acknowledged");
        Assert.That(delivered, Is.Unique);
        ReliabilityReport.Ledger.Messages(scenario, sent.Count, acked.Count, stored.Count, delivered.Count, lost, duplicated);
    }

    private static async Task<long> EventuallyAsync(Func<Task<long>> probe)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        long value;
        while ((value = await probe()) == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
        return value;
    }
}
