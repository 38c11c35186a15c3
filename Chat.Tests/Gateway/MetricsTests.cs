using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Text.RegularExpressions;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

public sealed partial class MetricsTests : GatewayTest
{
    [Test]
    public async Task The_metrics_endpoint_counts_sockets_frames_errors_messages_deliveries_and_batches_in_prometheus_text()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        var before = await ScrapeAsync();
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);

        var ack = await a.SendMessageAsync(conversation, "counted");
        await a.SendMessageAsync(conversation, "counted", ack.Str("clientMessageId"));
        await b.NextAsync(f => f.Type() == "message" && f.Long("messageId") == ack.Long("messageId"));
        await a.SendTextAsync("""{"type":"sync","conversationId":1}""");
        await a.NextAsync("error");
        await a.SendTextAsync("{ not json");
        await a.NextAsync("error");
        Assert.That(await Handshake.StatusAsync(Gateway.WebSocketAddress, token: null), Is.EqualTo(HttpStatusCode.Unauthorized));
        var after = await ScrapeAsync();

        Assert.Multiple(() =>
        {
            Assert.That(Delta(before, after, "chat_connections_opened_total"), Is.EqualTo(2));
            Assert.That(after["chat_connections"], Is.EqualTo(2));
            Assert.That(after["chat_users_online"], Is.EqualTo(2));
            Assert.That(Delta(before, after, "chat_frames_received_total{type=\"message\"}"), Is.EqualTo(2));
            Assert.That(Delta(before, after, "chat_frames_received_total{type=\"sync\"}"), Is.EqualTo(1));
            Assert.That(Delta(before, after, "chat_frames_received_total{type=\"invalid\"}"), Is.EqualTo(1));
            Assert.That(Delta(before, after, "chat_frames_errors_total{code=\"bad_request\"}"), Is.EqualTo(2));
            Assert.That(Delta(before, after, "chat_messages_stored_total"), Is.EqualTo(1));
            Assert.That(Delta(before, after, "chat_messages_duplicates_total"), Is.EqualTo(1));
            Assert.That(Delta(before, after, "chat_handshakes_refused_total{status=\"401\"}"), Is.EqualTo(1));
            // The message to bob, and each user's presence to the other as they came online.
            Assert.That(Delta(before, after, "chat_deliveries_total"), Is.GreaterThanOrEqualTo(1));
            Assert.That(Delta(before, after, "chat_writer_batch_size_count"), Is.EqualTo(2));
            Assert.That(Delta(before, after, "chat_writer_batch_duration_seconds_count"), Is.EqualTo(2));
            Assert.That(after["chat_writer_batch_duration_seconds_bucket{le=\"+Inf\"}"], Is.EqualTo(after["chat_writer_batch_duration_seconds_count"]));
            Assert.That(after["chat_writer_queue"], Is.EqualTo(0));
            Assert.That(after["process_resident_memory_bytes"], Is.GreaterThan(0));
        });
    }

    [Test]
    public async Task A_closed_socket_is_counted_under_its_reason()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var before = await ScrapeAsync();
        // Sockets of an earlier test may still be ending: their closes must not count here.
        await Eventually.TrueAsync(async () => (before = await ScrapeAsync())["chat_connections"] == 0, "earlier sockets have ended");
        var (carol, dave, erin) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var c = await ConnectAsync(carol);
        var d = await ConnectAsync(dave);
        var e = await ConnectAsync(erin);

        await a.SendBytesAsync([1, 2, 3], WebSocketMessageType.Binary);
        await a.WaitClosedAsync();
        await b.CloseAsync();
        c.Abort();
        // Both closed by the WebSocket library before the gateway sees the bytes: still the gateway's closes.
        await d.SendBytesAsync([(byte)'{', 0xC3, 0x28, (byte)'}'], WebSocketMessageType.Text);
        await d.WaitClosedAsync();
        await e.CloseAsync(ChatTestClient.ReservedCloseCode);
        var after = before;
        // A socket leaves the registry before its close is counted: wait for the counts.
        await Eventually.TrueAsync(async () => Delta(before, after = await ScrapeAsync(), "chat_connections_opened_total") == 5
            && after.Where(m => m.Key.StartsWith("chat_connections_closed_total", StringComparison.Ordinal)).Sum(m => m.Value - before.GetValueOrDefault(m.Key)) == 5,
            "the five sockets are counted closed");

        Assert.That(Delta(before, after, "chat_connections_closed_total{reason=\"binary_frame\"}"), Is.EqualTo(1));
        Assert.That(Delta(before, after, "chat_connections_closed_total{reason=\"invalid_utf8\"}"), Is.EqualTo(1));
        Assert.That(Delta(before, after, "chat_connections_closed_total{reason=\"protocol_error\"}"), Is.EqualTo(1));
        Assert.That(Delta(before, after, "chat_connections_closed_total{reason=\"client\"}"), Is.EqualTo(1));
        Assert.That(Delta(before, after, "chat_connections_closed_total{reason=\"lost\"}"), Is.EqualTo(1));
        Assert.That(Delta(before, after, "chat_connections_closed_total{reason=\"normal\"}"), Is.EqualTo(0));
    }

    [Test]
    public async Task Every_line_of_the_exposition_is_a_comment_or_a_sample_and_every_sample_has_a_declared_type()
    {
        using var http = Gateway.CreateHttpClient();
        using var response = await http.GetAsync("/metrics");
        var text = await response.Content.ReadAsStringAsync();

        Assert.That(response.Content.Headers.ContentType!.ToString(), Does.StartWith("text/plain; version=0.0.4"));
        var typed = new HashSet<string>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (TypeLine().Match(line) is { Success: true } type)
            {
                typed.Add(type.Groups[1].Value);
                continue;
            }
            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                continue;
            }
            var sample = SampleLine().Match(line);
            Assert.That(sample.Success, Is.True, $"not a sample: {line}");
            var family = Regex.Replace(sample.Groups[1].Value, "_(bucket|sum|count)$", "");
            Assert.That(typed, Does.Contain(family).Or.Contain(sample.Groups[1].Value), $"no TYPE before {line}");
        }
    }

    private async Task<Dictionary<string, double>> ScrapeAsync()
    {
        using var http = Gateway.CreateHttpClient();
        var text = await http.GetStringAsync("/metrics");
        return text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(line => !line.StartsWith('#'))
            .Select(line => line.Split(' '))
            .ToDictionary(parts => parts[0], parts => parts[1] == "+Inf" ? double.PositiveInfinity : double.Parse(parts[1], CultureInfo.InvariantCulture));
    }

    private static double Delta(Dictionary<string, double> before, Dictionary<string, double> after, string series) =>
        after.GetValueOrDefault(series) - before.GetValueOrDefault(series);

    [GeneratedRegex("^# TYPE ([a-z_]+) (counter|gauge|histogram)$")]
    private static partial Regex TypeLine();

    [GeneratedRegex("""^([a-z_]+)(\{[a-z_]+="[^"]*"\})? (-?[0-9.eE+-]+|\+Inf)$""")]
    private static partial Regex SampleLine();
}

public sealed class DisabledMetricsTests : GatewayTest
{
    protected override Dictionary<string, string?> Settings => new() { ["Chat:Metrics:Enabled"] = "false" };

    [Test]
    public async Task With_metrics_turned_off_the_endpoint_is_not_there()
    {
        using var http = Gateway.CreateHttpClient();

        Assert.That((await http.GetAsync("/metrics")).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }
}
