using Chat.Core.Options;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

public sealed class StartupValidationTests
{
    private static Exception StartFailure(Dictionary<string, string?> settings, string environment = "Development", string? connectionString = null)
    {
        var gateway = new TestGateway(settings, connectionString, environment);
        try
        {
            gateway.Start();
        }
        catch (Exception e)
        {
            return e;
        }
        finally
        {
            gateway.Dispose();
        }
        Assert.Fail("The gateway started with a bad configuration");
        throw new InvalidOperationException();
    }

    private static string AllMessages(Exception e) =>
        e is AggregateException aggregate
            ? string.Join(" | ", aggregate.InnerExceptions.Select(AllMessages))
            : e.Message + (e.InnerException is null ? "" : " | " + AllMessages(e.InnerException));

    [TestCase("Chat:Limits:MaxFrameBytes", "10")]
    [TestCase("Chat:Limits:MaxContentLength", "0")]
    [TestCase("Chat:Limits:SendQueueCapacity", "1")]
    [TestCase("Chat:Limits:CatchupLimitPerConversation", "-1")]
    [TestCase("Chat:Writer:MaxBatchSize", "0")]
    [TestCase("Chat:Writer:QueueCapacity", "0")]
    [TestCase("Chat:Metrics:Path", "metrics")]
    public void A_limit_out_of_range_stops_the_gateway_with_a_message_naming_the_key(string key, string value)
    {
        var failure = StartFailure(new() { [key] = value });

        Assert.That(AllMessages(failure), Does.Contain(key));
    }

    [Test]
    public void Outside_Development_the_gateway_refuses_to_start_without_a_signing_key()
    {
        var failure = StartFailure([], environment: "Production");

        Assert.That(AllMessages(failure), Does.Contain("Chat:Auth:SigningKey"));
    }

    [Test]
    public void Outside_Development_the_gateway_refuses_the_documented_development_key()
    {
        var failure = StartFailure(new() { ["Chat:Auth:SigningKey"] = ChatAuthOptions.DevelopmentSigningKey }, environment: "Production");

        Assert.That(AllMessages(failure), Does.Contain("development key"));
    }

    [Test]
    public void A_signing_key_shorter_than_32_bytes_is_refused()
    {
        var failure = StartFailure(new() { ["Chat:Auth:SigningKey"] = "too-short" });

        Assert.That(AllMessages(failure), Does.Contain("Chat:Auth:SigningKey"));
    }

    [Test]
    public void A_missing_connection_string_stops_the_gateway_with_a_message_naming_the_key()
    {
        var failure = StartFailure([], connectionString: "");

        Assert.That(AllMessages(failure), Does.Contain("ConnectionStrings:Chat"));
    }

    [Test]
    public async Task In_production_with_a_proper_key_the_gateway_starts()
    {
        await using var gateway = new TestGateway(new() { ["Chat:Auth:SigningKey"] = new string('p', 48) }, environment: "Production").Start();
        using var http = gateway.CreateHttpClient();

        Assert.That((await http.GetAsync("/health/live")).IsSuccessStatusCode, Is.True);
    }
}
