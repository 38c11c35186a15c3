using Chat.Cli.Client;
using Chat.Cli.Infrastructure;

namespace Chat.Tests.Cli;

public sealed class GatewayTargetTests
{
    private static GatewayTarget Target(string? url, Dictionary<string, string>? environment = null, params string[] args) =>
        GatewayTarget.FromArguments(
            Arguments.Parse(url is null ? args : [.. args, "--url", url], GatewayTarget.Options, []),
            name => environment?.GetValueOrDefault(name));

    [TestCase("http://127.0.0.1:8080", "http://127.0.0.1:8080/api/conversations", "ws://127.0.0.1:8080/ws")]
    [TestCase("https://chat.example.com", "https://chat.example.com/api/conversations", "wss://chat.example.com/ws")]
    [TestCase("https://example.com/chat", "https://example.com/chat/api/conversations", "wss://example.com/chat/ws")]
    [TestCase("https://example.com/chat/", "https://example.com/chat/api/conversations", "wss://example.com/chat/ws")]
    public void Api_and_WebSocket_addresses_sit_below_the_base_url(string url, string api, string socket)
    {
        var target = Target(url, null, "--token", "t");

        Assert.That(target.Api("api/conversations").ToString(), Is.EqualTo(api));
        Assert.That(target.WebSocketUrl(catchup: true).ToString(), Is.EqualTo(socket));
        Assert.That(target.WebSocketUrl(catchup: false).ToString(), Is.EqualTo(socket + "?catchup=false"));
    }

    [Test]
    public void The_url_comes_from_CHAT_URL_when_not_given()
    {
        Assert.That(Target(null, new() { ["CHAT_URL"] = "http://gateway:9000" }, "--token", "t").BaseUrl.ToString(), Is.EqualTo("http://gateway:9000/"));
        Assert.That(Target(null, null, "--token", "t").BaseUrl.ToString(), Is.EqualTo("http://127.0.0.1:8080/"));
    }

    [Test]
    public void A_bad_url_is_named_by_where_it_came_from()
    {
        var fromEnvironment = Assert.Throws<UsageException>(() => Target(null, new() { ["CHAT_URL"] = "gateway:9000" }, "--token", "t"));
        var fromOption = Assert.Throws<UsageException>(() => Target("gateway:9000", null, "--token", "t"));

        Assert.That(fromEnvironment!.Message, Does.StartWith("CHAT_URL 'gateway:9000' is not"));
        Assert.That(fromOption!.Message, Does.StartWith("--url 'gateway:9000' is not"));
    }

    [Test]
    public void As_mints_a_token_for_that_user_and_token_is_used_as_given()
    {
        Assert.That(Target(null, null, "--token", "abc").Token, Is.EqualTo("abc"));
        var minted = Target(null, null, "--as", "alice", "--name", "Alice").Token;
        var payload = System.Text.Json.JsonDocument.Parse(Base64UrlDecode(minted.Split('.')[1])).RootElement;
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo("alice"));
        Assert.That(payload.GetProperty("name").GetString(), Is.EqualTo("Alice"));
    }

    private static byte[] Base64UrlDecode(string text) =>
        Convert.FromBase64String(text.Replace('-', '+').Replace('_', '/').PadRight(text.Length + (4 - text.Length % 4) % 4, '='));
}
