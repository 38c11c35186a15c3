using System.Globalization;
using System.Net.WebSockets;
using Chat.Core.Options;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Hardening;

/// <summary>The per-connection rate limits at their shipped defaults, over real sockets.</summary>
public sealed class RateLimitTests : GatewayTest
{
    private static readonly ChatLimitsOptions Defaults = new();

    protected override Dictionary<string, string?> Settings => new()
    {
        ["Chat:Limits:MessageRatePerSecond"] = Defaults.MessageRatePerSecond.ToString(CultureInfo.InvariantCulture),
        ["Chat:Limits:MessageBurst"] = Defaults.MessageBurst.ToString(CultureInfo.InvariantCulture),
        ["Chat:Limits:TypingRatePerSecond"] = Defaults.TypingRatePerSecond.ToString(CultureInfo.InvariantCulture),
        ["Chat:Limits:TypingBurst"] = Defaults.TypingBurst.ToString(CultureInfo.InvariantCulture),
        ["Chat:Limits:PresenceRatePerSecond"] = Defaults.PresenceRatePerSecond.ToString(CultureInfo.InvariantCulture),
        ["Chat:Limits:PresenceBurst"] = Defaults.PresenceBurst.ToString(CultureInfo.InvariantCulture),
    };

    private async Task<(long Conversation, TestUser Alice, ChatTestClient A, ChatTestClient B)> PairAsync()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        return (conversation, alice, await ConnectAsync(alice), await ConnectAsync(bob));
    }

    [Test]
    public async Task The_welcome_tells_the_client_the_limits_in_force()
    {
        var (_, _, a, _) = await PairAsync();

        var limits = a.Welcome.GetProperty("limits");

        Assert.That(limits.GetProperty("maxFrameBytes").GetInt32(), Is.EqualTo(Defaults.MaxFrameBytes));
        Assert.That(limits.GetProperty("maxContentLength").GetInt32(), Is.EqualTo(Defaults.MaxContentLength));
        Assert.That(limits.GetProperty("framesPerSecond").GetDouble(), Is.EqualTo(Defaults.MessageRatePerSecond));
        Assert.That(limits.GetProperty("frameBurst").GetInt32(), Is.EqualTo(Defaults.MessageBurst));
        Assert.That(limits.GetProperty("typingPerSecond").GetDouble(), Is.EqualTo(Defaults.TypingRatePerSecond));
        Assert.That(limits.GetProperty("typingBurst").GetInt32(), Is.EqualTo(Defaults.TypingBurst));
        Assert.That(limits.GetProperty("presencePerSecond").GetDouble(), Is.EqualTo(Defaults.PresenceRatePerSecond));
        Assert.That(limits.GetProperty("presenceBurst").GetInt32(), Is.EqualTo(Defaults.PresenceBurst));
    }

    [Test]
    public async Task A_burst_beyond_the_bucket_gets_rate_limited_with_a_retry_time_and_the_excess_is_not_stored()
    {
        var (conversation, _, a, b) = await PairAsync();
        const int burst = 30;
        var clock = System.Diagnostics.Stopwatch.StartNew();

        for (var i = 0; i < burst; i++)
        {
            await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = $"b-{i}", content = $"burst {i}" });
        }
        var answers = new List<System.Text.Json.JsonElement>();
        for (var i = 0; i < burst; i++)
        {
            answers.Add(await a.NextAsync(f => f.Type() is "ack" or "error"));
        }
        var refill = (int)(clock.Elapsed.TotalSeconds * Defaults.MessageRatePerSecond) + 1;
        var acked = answers.Where(f => f.Type() == "ack").Select(f => f.Str("clientMessageId")!).ToList();
        var limited = answers.Where(f => f.Str("code") == "rate_limited").ToList();
        var stored = await Sql.QueryAsync<string>("SELECT client_message_id FROM messages WHERE conversation_id = @conversation", new { conversation });
        var delivered = await b.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() == "message");

        // The bucket holds 20 and refills at 10/s while the frames are handled.
        Assert.That(acked, Has.Count.InRange(Defaults.MessageBurst, Defaults.MessageBurst + refill));
        Assert.That(acked.Count + limited.Count, Is.EqualTo(burst), "every frame is either taken or refused");
        Assert.That(limited.Select(f => f.Long("retryAfterMs")), Is.All.InRange(1, 1000 / Defaults.MessageRatePerSecond + 1));
        Assert.That(limited.Select(f => f.Str("clientMessageId")), Is.All.StartsWith("b-"), "the refusal names the message");
        Assert.That(stored, Is.EquivalentTo(acked), "refused messages are not stored");
        Assert.That(delivered, Has.Count.EqualTo(acked.Count));

        // A client that waits as told gets through with the same key.
        var refused = limited[0];
        await Task.Delay(TimeSpan.FromMilliseconds(refused.Long("retryAfterMs")));
        var retry = await a.SendMessageAsync(conversation, "again", refused.Str("clientMessageId"));
        Assert.That(retry.Type(), Is.EqualTo("ack"));
        await b.NextAsync(f => f.Type() == "message" && f.Str("clientMessageId") == refused.Str("clientMessageId"));
        ReliabilityReport.Ledger.BadInput("message burst beyond the rate limit (frames refused)", limited.Count);
        // Sent counts keys, as in every scenario: the retry reuses the key of a refused message.
        ReliabilityReport.Ledger.Messages("rate-limited burst", burst, acked.Count + 1, stored.Count + 1, delivered.Count + 1, 0, 0);
    }

    [Test]
    public async Task Typing_has_its_own_stricter_bucket()
    {
        var (conversation, _, a, b) = await PairAsync();
        const int typingFrames = 12;

        for (var i = 0; i < typingFrames; i++)
        {
            await a.SendAsync(new { type = "typing", conversationId = conversation, isTyping = true });
        }
        var errors = await a.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() == "error");
        // Typing is refused, and messages still have their whole bucket.
        var ack = await a.SendMessageAsync(conversation, "after typing");
        var relayed = await b.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() == "typing" && f.GetProperty("isTyping").GetBoolean());

        Assert.That(ack.Type(), Is.EqualTo("ack"));
        Assert.That(relayed, Has.Count.InRange(Defaults.TypingBurst, Defaults.TypingBurst + 1));
        Assert.That(errors.Select(f => f.Str("code")), Is.All.EqualTo("rate_limited"));
        Assert.That(relayed.Count + errors.Count, Is.EqualTo(typingFrames));
        ReliabilityReport.Ledger.BadInput("typing burst beyond the rate limit (frames refused)", errors.Count);
    }

    [Test]
    public async Task Presence_has_its_own_stricter_bucket_and_a_refused_change_reaches_nobody()
    {
        var (_, _, a, b) = await PairAsync();
        const int presenceFrames = 12;
        var clock = System.Diagnostics.Stopwatch.StartNew();

        // Every frame changes the status, so every frame taken is announced to Bob.
        for (var i = 0; i < presenceFrames; i++)
        {
            await a.SendAsync(new { type = "presence", presenceStatus = i % 2 == 0 ? "away" : "online" });
        }
        var errors = await a.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() == "error");
        var refill = (int)(clock.Elapsed.TotalSeconds * Defaults.PresenceRatePerSecond) + 1;
        // Messages still have their whole bucket.
        var ack = await a.SendMessageAsync((await Sql.QueryAsync<long>(
            "SELECT conversation_id FROM conversation_participants WHERE user_id = @user", new { user = a.UserId })).Single(), "after presence");
        var announced = await b.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() == "presence");

        Assert.That(ack.Type(), Is.EqualTo("ack"));
        Assert.That(announced, Has.Count.InRange(Defaults.PresenceBurst, Defaults.PresenceBurst + refill));
        Assert.That(errors.Select(f => f.Str("code")), Is.All.EqualTo("rate_limited"));
        Assert.That(errors.Select(f => f.Str("frameType")), Is.All.EqualTo("presence"));
        Assert.That(errors.Select(f => f.Long("retryAfterMs")), Is.All.InRange(1, 1000 / Defaults.PresenceRatePerSecond + 1));
        Assert.That(announced.Count + errors.Count, Is.EqualTo(presenceFrames), "every frame is either announced or refused");
        ReliabilityReport.Ledger.BadInput("presence burst beyond the rate limit (frames refused)", errors.Count);
    }

    [Test]
    public async Task A_client_that_keeps_flooding_is_closed_with_1008_while_other_users_are_served()
    {
        var (conversation, _, a, b) = await PairAsync();
        var (_, _, c, d) = await PairAsync();
        var otherConversation = (await Sql.QueryAsync<long>(
            "SELECT conversation_id FROM conversation_participants WHERE user_id = @user", new { user = c.UserId })).Single();

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var flood = Task.Run(async () =>
        {
            var sent = 0;
            try
            {
                for (; sent < 2000 && a.State == WebSocketState.Open; sent++)
                {
                    await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = $"f-{sent}", content = "flood" });
                }
            }
            catch (WebSocketException)
            {
                // Closed under the flooder.
            }
            return sent;
        });
        var others = new List<string?>();
        for (var i = 0; i < 20; i++)
        {
            others.Add((await c.SendMessageAsync(otherConversation, $"meanwhile {i}")).Type());
        }
        var sent = await flood;
        await a.WaitClosedAsync();
        var refill = (int)(clock.Elapsed.TotalSeconds * Defaults.MessageRatePerSecond) + 1;
        var stored = await Sql.MessageCountAsync(conversation);
        var delivered = await d.CollectAsync(TimeSpan.FromMilliseconds(300), f => f.Type() == "message");

        Assert.That(a.CloseStatus, Is.EqualTo(WebSocketCloseStatus.PolicyViolation));
        Assert.That(a.CloseDescription, Is.EqualTo("rate limit exceeded"));
        Assert.That(stored, Is.LessThanOrEqualTo(Defaults.MessageBurst + refill), "the flood beyond the bucket was not stored");
        Assert.That(sent, Is.GreaterThan(stored + Defaults.RateLimitTolerance), "the flooder sent far more than it was allowed");
        Assert.That(others, Is.All.EqualTo("ack"), "other users keep being served");
        Assert.That(delivered, Has.Count.EqualTo(20));
        Assert.That((await b.CollectAsync(TimeSpan.FromMilliseconds(100), f => f.Type() == "message")), Has.Count.EqualTo(stored));
        ReliabilityReport.Ledger.BadInput("message flood frames", sent);
        ReliabilityReport.Ledger.Messages("other users during a flood", 20, 20, 20, delivered.Count, 0, 0);
    }

    [Test]
    public async Task Frames_refused_as_malformed_or_of_unknown_type_count_against_the_message_bucket()
    {
        var (_, _, a, _) = await PairAsync();
        // Far more than the burst plus what the bucket regains while they are handled.
        const int frames = 60;

        for (var i = 0; i < frames; i++)
        {
            await a.SendTextAsync((i % 3) switch
            {
                0 => "{not json",
                1 => $$"""{"type":"nonsense","clientMessageId":"n-{{i}}"}""",
                _ => $$"""{"type":"message","clientMessageId":"g-{{i}}","content":"no conversation"}""",
            });
        }
        var answers = new List<System.Text.Json.JsonElement>();
        for (var i = 0; i < frames; i++)
        {
            answers.Add(await a.NextAsync("error"));
        }
        var limited = answers.Where(f => f.Str("code") == "rate_limited").ToList();

        Assert.That(answers.Take(Defaults.MessageBurst).Select(f => f.Str("code")), Is.All.AnyOf("bad_request", "unknown_type"), "the bucket's burst is answered as usual");
        Assert.That(limited, Is.Not.Empty, "past the burst, garbage is rate limited like any other frame");
        Assert.That(limited.Select(f => f.Long("retryAfterMs")), Is.All.InRange(1, 1000 / Defaults.MessageRatePerSecond + 1));
        var named = limited.Select(f => f.Str("clientMessageId")).OfType<string>().ToList();
        Assert.That(named, Is.Not.Empty.And.All.StartsWith("g-"), "the refusal names the key of a message, and of no other frame");
        ReliabilityReport.Ledger.BadInput("garbage frames beyond the rate limit (frames refused)", limited.Count);
    }

    [Test]
    public async Task A_client_that_keeps_sending_garbage_is_closed_with_1008()
    {
        var (_, _, a, _) = await PairAsync();

        var sent = 0;
        try
        {
            for (; sent < 2000 && a.State == WebSocketState.Open; sent++)
            {
                await a.SendTextAsync(sent % 2 == 0 ? "[]" : """{"type":"nonsense"}""");
            }
        }
        catch (WebSocketException)
        {
            // Closed under the flooder.
        }
        await a.WaitClosedAsync();

        Assert.That(a.CloseStatus, Is.EqualTo(WebSocketCloseStatus.PolicyViolation));
        Assert.That(a.CloseDescription, Is.EqualTo("rate limit exceeded"));
        Assert.That(() => Gateway.Logs.Lines.Any(l => l.Contains("closed (PolicyViolation rate limit exceeded)")), Is.True.After(5000, 50),
            "the log gives the gateway's reason, not the client's echo of the close");
        ReliabilityReport.Ledger.BadInput("garbage frame flood frames", sent);
    }
}
