using Chat.Core.Auth;
using Chat.Core.Options;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Chat.Tests.Cli;

public sealed class TokenCommandTests
{
    [Test]
    public async Task Token_prints_a_token_the_gateway_accepts_with_the_given_claims()
    {
        var (exit, token, _) = await CliRun.RunAsync("token", "alice", "--name", "Alice A", "--ttl", "2h");

        Assert.That(exit, Is.EqualTo(0));
        var validation = await new JsonWebTokenHandler().ValidateTokenAsync(token,
            ChatTokens.ValidationParameters(new ChatAuthOptions { SigningKey = ChatAuthOptions.DevelopmentSigningKey }));
        Assert.That(validation.IsValid, Is.True, validation.Exception?.Message);
        Assert.That(validation.Claims["sub"], Is.EqualTo("alice"));
        Assert.That(validation.Claims["name"], Is.EqualTo("Alice A"));
        var lifetime = validation.SecurityToken.ValidTo - DateTime.UtcNow;
        Assert.That(lifetime, Is.EqualTo(TimeSpan.FromHours(2)).Within(TimeSpan.FromMinutes(1)));
    }

    [Test]
    public async Task Token_uses_the_signing_key_from_the_environment()
    {
        var key = new string('e', 40);
        var (_, token, _) = await CliRun.RunAsync(new Dictionary<string, string> { ["Chat__Auth__SigningKey"] = key }, "token", "bob");

        var validation = await new JsonWebTokenHandler().ValidateTokenAsync(token, ChatTokens.ValidationParameters(new ChatAuthOptions { SigningKey = key }));
        Assert.That(validation.IsValid, Is.True);
    }

    [TestCase(new[] { "token" }, "external user id")]
    [TestCase(new[] { "token", "alice", "--ttl", "forever" }, "--ttl")]
    [TestCase(new[] { "token", "alice", "--colour", "red" }, "unknown option")]
    [TestCase(new[] { "token", "alice", "--key", "short" }, "--key is too short")]
    [TestCase(new[] { "token", " alice" }, "external user id must not start or end with white space")]
    [TestCase(new[] { "token", "al\u0007ice" }, "external user id must not hold control characters")]
    [TestCase(new[] { "token", ".." }, "external user id must not be . or ..")]
    [TestCase(new[] { "token", "alice", "--name", "Alice\u202e" }, "--name must not hold bidirectional control characters")]
    [TestCase(new[] { "token", "alice", "--name", "Ali\u0007ce" }, "--name must not hold control characters")]
    [TestCase(new[] { "token", "alice", "--picture", "javascript:alert(1)" }, "--picture must be an absolute http or https URL")]
    [TestCase(new[] { "token", "alice", "--ttl", "90" }, "a bare number has no unit")]
    [TestCase(new[] { "token", "alice", "--ttl", "9999999d" }, "--ttl is longer than 3650 days")]
    public async Task Token_explains_a_bad_argument_and_exits_2(string[] args, string explanation)
    {
        var (exit, output, error) = await CliRun.RunAsync(args);

        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Is.Empty);
        Assert.That(error, Does.Contain(explanation).And.Not.Contain("Chat:Auth:SigningKey"));
    }

    [TestCase(new[] { "token", "alice", "--name=--alice--" }, "name", "--alice--")]
    [TestCase(new[] { "token", "--", "--help" }, "sub", "--help")]
    public async Task A_value_that_starts_with_two_dashes_is_given_after_an_equals_sign_or_after_a_double_dash(string[] args, string claim, string value)
    {
        var (exit, token, error) = await CliRun.RunAsync(args);

        Assert.That(exit, Is.EqualTo(0), error);
        var validation = await new JsonWebTokenHandler().ValidateTokenAsync(token,
            ChatTokens.ValidationParameters(new ChatAuthOptions { SigningKey = ChatAuthOptions.DevelopmentSigningKey }));
        Assert.That(validation.Claims[claim], Is.EqualTo(value));
    }

    [Test]
    public async Task A_short_key_from_the_environment_is_named_by_its_variable()
    {
        var (exit, _, error) = await CliRun.RunAsync(new Dictionary<string, string> { ["Chat__Auth__SigningKey"] = "short" }, "token", "bob");

        Assert.That(exit, Is.EqualTo(2));
        Assert.That(error, Does.Contain("Chat__Auth__SigningKey is too short"));
    }

    [TestCase("90s", 90)]
    [TestCase("30m", 1800)]
    [TestCase("1h", 3600)]
    [TestCase("7d", 604800)]
    [TestCase("01:30:00", 5400)]
    public void Durations_read_as_people_write_them(string text, int seconds) =>
        Assert.That(Chat.Cli.Infrastructure.Arguments.ParseDuration(text), Is.EqualTo(TimeSpan.FromSeconds(seconds)));

    // TimeSpan reads a bare "90" as 90 days: a token meant to live 90 seconds lived three months.
    [TestCase("90")]
    [TestCase("1")]
    [TestCase("0s")]
    [TestCase("99999999999999d")]
    [TestCase("1.5h")]
    public void A_bare_number_zero_or_an_impossible_length_is_no_duration(string text) =>
        Assert.That(Chat.Cli.Infrastructure.Arguments.ParseDuration(text), Is.Null);
}
