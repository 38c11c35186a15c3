using System.Net;
using System.Net.Sockets;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Cli;

public sealed class SmokeCommandTests : GatewayTest
{
    private static readonly string[] Checks =
    [
        "create a conversation over HTTP",
        "connect over WebSocket",
        "message → ack → delivery",
        "idempotent retry",
        "typing",
        "read receipt and unread count",
        "presence online/away/offline",
        "catch-up after a reconnect",
        "sync from a position",
        "edit and delete",
        "member added live",
        "non-member refused",
    ];

    [Test]
    public async Task Smoke_passes_every_check_against_a_working_gateway()
    {
        var result = await CliRun.RunAsync("smoke", "--url", Gateway.HttpAddress.ToString(), "--key", CliRun.Key, "--timeout", "30s");

        Assert.That(result.Exit, Is.EqualTo(0), result.ToString());
        var lines = result.Output.Split('\n').Select(l => l.TrimEnd()).ToList();
        foreach (var check in Checks)
        {
            Assert.That(lines, Has.One.Match($@"^ok   {System.Text.RegularExpressions.Regex.Escape(check)} +\d+\.\d ms$"), result.ToString());
        }
        Assert.That(lines[^1], Does.StartWith($"smoke: all {Checks.Length} checks passed against {Gateway.HttpAddress}"));
    }

    [Test]
    public async Task Smoke_runs_twice_against_the_same_gateway_with_fresh_users()
    {
        var first = await CliRun.RunAsync("smoke", "--url", Gateway.HttpAddress.ToString(), "--timeout", "30s");
        var second = await CliRun.RunAsync("smoke", "--url", Gateway.HttpAddress.ToString(), "--timeout", "30s");

        Assert.That((first.Exit, second.Exit), Is.EqualTo((0, 0)), first + Environment.NewLine + second);
    }

    [Test]
    public async Task Smoke_fails_and_names_the_check_when_the_gateway_replays_no_catch_up()
    {
        // A valid setting that switches one behaviour off: the reconnecting user gets no catch-up messages.
        await using var gateway = new TestGateway(new() { ["Chat:Limits:CatchupLimitPerConversation"] = "0" }).Start();

        var result = await CliRun.RunAsync("smoke", "--url", gateway.HttpAddress.ToString(), "--key", CliRun.Key, "--timeout", "30s");

        Assert.That(result.Exit, Is.EqualTo(1), result.ToString());
        Assert.That(result.Output, Does.Contain("FAIL catch-up after a reconnect: Bob's catch-up (0 messages) lacks the message sent while he was away (ready says hasMore: true)"));
        Assert.That(result.Output, Does.Contain("ok   message → ack → delivery"));
        Assert.That(result.Output, Does.Contain("ok   member added live"));
        Assert.That(result.Output, Does.Contain("skip sync from a position: needs 'catch-up after a reconnect'"));
        Assert.That(result.Output, Does.Contain("smoke: 1 failed, 2 skipped, 9 passed"));
    }

    [Test]
    public async Task Smoke_against_a_gateway_that_is_not_running_fails_at_the_first_check_and_names_the_url()
    {
        var url = CliRun.DeadUrl();

        var result = await CliRun.RunAsync("smoke", "--url", url);

        Assert.That(result.Exit, Is.EqualTo(1));
        var lines = result.Output.Split('\n').Select(l => l.TrimEnd()).ToList();
        Assert.That(lines[0], Is.EqualTo($"FAIL create a conversation over HTTP: cannot reach the gateway at {url}/: connection refused (is the gateway running?)"));
        Assert.That(lines, Has.Count.EqualTo(3), result.ToString());
        Assert.That(lines[1], Is.EqualTo($"skip the remaining {Checks.Length - 1} checks: each needs one that did not pass"));
        Assert.That(lines[^1], Is.EqualTo($"smoke: 1 failed, {Checks.Length - 1} skipped, 0 passed against {url}/"));
    }

    [Test]
    public async Task Smoke_names_the_step_a_gateway_never_answers()
    {
        // Accepts connections and never answers: the check runs into its timeout.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accepted = new List<Socket>();
        var accepting = Task.Run(async () =>
        {
            while (true)
            {
                accepted.Add(await listener.AcceptSocketAsync());
            }
        });

        var result = await CliRun.RunAsync("smoke", "--url", $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}", "--timeout", "1s");

        Assert.That(result.Exit, Is.EqualTo(1));
        Assert.That(result.Output, Does.StartWith("FAIL create a conversation over HTTP: timed out after 1 s waiting for the answer to POST /api/conversations"));
        listener.Stop();
        accepted.ForEach(s => s.Dispose());
        await accepting.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    [Test]
    public async Task Smoke_with_a_key_the_gateway_does_not_use_says_the_token_was_refused()
    {
        var result = await CliRun.RunAsync("smoke", "--url", Gateway.HttpAddress.ToString(), "--key", new string('k', 40), "--timeout", "30s");

        Assert.That(result.Exit, Is.EqualTo(1));
        Assert.That(result.Output, Does.StartWith("FAIL create a conversation over HTTP: the gateway refused the token (HTTP 401)"));
    }
}
