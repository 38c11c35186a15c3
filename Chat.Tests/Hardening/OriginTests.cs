using System.Net;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Hardening;

public sealed class OriginTests : GatewayTest
{
    protected override Dictionary<string, string?> Settings => new()
    {
        ["Chat:Security:AllowedOrigins:0"] = "https://chat.example.com",
        ["Chat:Security:AllowedOrigins:1"] = "http://localhost:3000",
    };

    private string Token() => Gateway.TokenFor("origin-" + Guid.NewGuid().ToString("N")[..8]);

    [Test]
    public async Task An_upgrade_from_an_unlisted_origin_gets_403_even_with_a_valid_token()
    {
        var status = await Handshake.StatusAsync(Gateway.WebSocketAddress, Token(), Handshake.Origin("https://evil.example"), "origin not allowed");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
    }

    [Test]
    public async Task A_refused_origin_is_logged_once_at_warning_however_often_it_tries()
    {
        var origin = $"https://hostile-{Guid.NewGuid():N}.example";
        for (var i = 0; i < 5; i++)
        {
            Assert.That(await Handshake.StatusAsync(Gateway.WebSocketAddress, token: null, Handshake.Origin(origin), "origin not allowed"), Is.EqualTo(HttpStatusCode.Forbidden));
        }

        // The later four are at Debug, below the gateway's level here.
        var lines = Gateway.Logs.Lines.Where(l => l.Contains(origin) && !l.StartsWith("Debug", StringComparison.Ordinal)).ToList();
        Assert.That(lines, Has.Count.EqualTo(1));
        Assert.That(lines[0], Does.StartWith("Warning"));
    }

    [Test]
    public async Task A_script_sending_a_new_origin_each_time_gets_at_most_ten_warning_lines_a_minute()
    {
        var marker = Guid.NewGuid().ToString("N");
        for (var i = 0; i < 15; i++)
        {
            await Handshake.StatusAsync(Gateway.WebSocketAddress, token: null, Handshake.Origin($"https://h{i}-{marker}.example"), "origin not allowed");
        }

        Assert.That(Gateway.Logs.Lines.Count(l => l.StartsWith("Warning", StringComparison.Ordinal) && l.Contains(marker)), Is.InRange(1, 10));
    }

    [Test]
    public async Task The_origin_is_checked_before_the_token()
    {
        var status = await Handshake.StatusAsync(Gateway.WebSocketAddress, token: null, Handshake.Origin("https://evil.example"), "origin not allowed");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden), "a hostile page learns nothing about authentication");
    }

    [TestCase("https://chat.example.com")]
    [TestCase("HTTPS://Chat.Example.com")]
    [TestCase("http://localhost:3000")]
    public async Task An_upgrade_from_a_listed_origin_is_accepted(string origin)
    {
        var status = await Handshake.StatusAsync(Gateway.WebSocketAddress, Token(), Handshake.Origin(origin));

        Assert.That(status, Is.EqualTo(HttpStatusCode.SwitchingProtocols));
    }

    [TestCase("http://chat.example.com")]
    [TestCase("https://chat.example.com:8443")]
    [TestCase("https://sub.chat.example.com")]
    [TestCase("null")]
    public async Task An_origin_that_differs_in_scheme_port_or_host_is_refused(string origin)
    {
        var status = await Handshake.StatusAsync(Gateway.WebSocketAddress, Token(), Handshake.Origin(origin), "origin not allowed");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
    }

    [Test]
    public async Task An_upgrade_without_an_origin_header_passes_since_only_browsers_send_one()
    {
        var status = await Handshake.StatusAsync(Gateway.WebSocketAddress, Token());

        Assert.That(status, Is.EqualTo(HttpStatusCode.SwitchingProtocols));
    }
}

public sealed class DefaultOriginTests
{
    [Test]
    public async Task By_default_no_browser_origin_is_allowed_and_programs_still_connect()
    {
        await using var gateway = new TestGateway().Start();
        var token = gateway.TokenFor("default-origin");

        var fromPage = await Handshake.StatusAsync(gateway.WebSocketAddress, token, Handshake.Origin("https://chat.example.com"), "origin not allowed");
        var fromProgram = await Handshake.StatusAsync(gateway.WebSocketAddress, token);

        Assert.That(fromPage, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(fromProgram, Is.EqualTo(HttpStatusCode.SwitchingProtocols));
    }

    [Test]
    public async Task A_star_allows_every_origin()
    {
        await using var gateway = new TestGateway(new() { ["Chat:Security:AllowedOrigins:0"] = "*" }).Start();

        var status = await Handshake.StatusAsync(gateway.WebSocketAddress, gateway.TokenFor("any-origin"), Handshake.Origin("https://anything.example"));

        Assert.That(status, Is.EqualTo(HttpStatusCode.SwitchingProtocols));
    }

    [Test]
    public async Task A_plain_comma_separated_value_lists_the_allowed_origins_as_the_indexed_form_does()
    {
        // As Chat__Security__AllowedOrigins=... in the environment, without __0.
        await using var gateway = new TestGateway(new() { ["Chat:Security:AllowedOrigins"] = "https://chat.example.com, http://localhost:3000" }).Start();
        var token = gateway.TokenFor("plain-origins");

        var first = await Handshake.StatusAsync(gateway.WebSocketAddress, token, Handshake.Origin("https://chat.example.com"));
        var second = await Handshake.StatusAsync(gateway.WebSocketAddress, token, Handshake.Origin("http://localhost:3000"));
        var other = await Handshake.StatusAsync(gateway.WebSocketAddress, token, Handshake.Origin("https://evil.example"), "origin not allowed");

        Assert.That(first, Is.EqualTo(HttpStatusCode.SwitchingProtocols));
        Assert.That(second, Is.EqualTo(HttpStatusCode.SwitchingProtocols));
        Assert.That(other, Is.EqualTo(HttpStatusCode.Forbidden));
    }

    [Test]
    public async Task A_plain_value_is_the_whole_list_even_beside_an_indexed_one_from_another_source()
    {
        await using var gateway = new TestGateway(new()
        {
            ["Chat:Security:AllowedOrigins:0"] = "https://old.example.com",
            ["Chat:Security:AllowedOrigins"] = "https://chat.example.com",
        }).Start();
        var token = gateway.TokenFor("plain-wins");

        var plain = await Handshake.StatusAsync(gateway.WebSocketAddress, token, Handshake.Origin("https://chat.example.com"));
        var indexed = await Handshake.StatusAsync(gateway.WebSocketAddress, token, Handshake.Origin("https://old.example.com"), "origin not allowed");

        Assert.That((plain, indexed), Is.EqualTo((HttpStatusCode.SwitchingProtocols, HttpStatusCode.Forbidden)));
    }

    [Test]
    public void A_plain_value_that_is_not_an_origin_stops_the_gateway_at_start()
    {
        var gateway = new TestGateway(new() { ["Chat:Security:AllowedOrigins"] = "chat.example.com" });
        try
        {
            var failure = Assert.Throws(Is.InstanceOf<Exception>(), () => gateway.Start());
            Assert.That(AllMessages(failure!), Does.Contain("Chat:Security:AllowedOrigins").And.Contain("chat.example.com"));
        }
        finally
        {
            gateway.Dispose();
        }
    }

    [TestCase("https://chat.example.com/")]
    [TestCase("https://chat.example.com/app")]
    [TestCase("chat.example.com")]
    [TestCase("ftp://chat.example.com")]
    [TestCase("https://user@chat.example.com")]
    [TestCase("https://chat.example.com:443")]
    [TestCase("http://chat.example.com:80")]
    public void An_allowed_origin_that_is_not_an_origin_as_browsers_send_it_is_refused_by_validation(string origin)
    {
        var failure = new Chat.Core.Options.ChatSecurityOptions { AllowedOrigins = [origin] }.Validate();

        Assert.That(failure, Does.Contain("Chat:Security:AllowedOrigins").And.Contain(origin));
    }

    [Test]
    public void A_bad_allowed_origin_stops_the_gateway_at_start()
    {
        var gateway = new TestGateway(new() { ["Chat:Security:AllowedOrigins:0"] = "https://chat.example.com/app" });
        try
        {
            var failure = Assert.Throws(Is.InstanceOf<Exception>(), () => gateway.Start());
            Assert.That(AllMessages(failure!), Does.Contain("Chat:Security:AllowedOrigins"));
        }
        finally
        {
            gateway.Dispose();
        }
    }

    private static string AllMessages(Exception e) =>
        e is AggregateException aggregate
            ? string.Join(" | ", aggregate.InnerExceptions.Select(AllMessages))
            : e.Message + (e.InnerException is null ? "" : " | " + AllMessages(e.InnerException));
}
