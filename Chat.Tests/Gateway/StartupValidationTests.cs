using System.Diagnostics;
using Chat.Core.Options;
using Chat.Gateway.Hosting;
using Chat.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Chat.Tests.Gateway;

public sealed class StartupValidationTests
{
    internal static Exception StartFailure(Dictionary<string, string?> settings, string environment = "Development", string? connectionString = null)
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

    internal static string AllMessages(Exception e) =>
        e is AggregateException aggregate
            ? string.Join(" | ", aggregate.InnerExceptions.Select(AllMessages))
            : e.Message + (e.InnerException is null ? "" : " | " + AllMessages(e.InnerException));

    [TestCase("Chat:Limits:MaxFrameBytes", "10")]
    [TestCase("Chat:Limits:MaxContentLength", "0")]
    [TestCase("Chat:Limits:SendQueueCapacity", "1")]
    [TestCase("Chat:Limits:CatchupLimitPerConversation", "-1")]
    [TestCase("Chat:Limits:SendQueueMaxBytes", "100000")]
    [TestCase("Chat:Writer:MaxBatchSize", "0")]
    [TestCase("Chat:Writer:QueueCapacity", "0")]
    [TestCase("Chat:Metrics:Path", "metrics")]
    [TestCase("Chat:Metrics:Path", "")]
    [TestCase("Chat:Metrics:Path", "/health/live")]
    [TestCase("Chat:Metrics:Path", "/WS")]
    [TestCase("Chat:Metrics:Path", "/api/metrics")]
    public void A_limit_out_of_range_stops_the_gateway_with_a_message_naming_the_key(string key, string value)
    {
        var failure = StartFailure(new() { [key] = value });

        Assert.That(AllMessages(failure), Does.Contain(key));
    }

    // "15" is fifteen days to the binder: the message shows the form it takes.
    [Test]
    public void A_time_out_of_range_is_named_in_the_form_the_setting_takes()
    {
        var failure = StartFailure(new() { ["Chat:Limits:CloseTimeout"] = "00:00:00.05", ["Chat:Limits:KeepAliveInterval"] = "15" });

        Assert.That(AllMessages(failure), Does.Contain("Chat:Limits:CloseTimeout must be between 00:00:00.1 and 00:01:00 (hh:mm:ss; a bare number is read as days)."));
        Assert.That(AllMessages(failure), Does.Contain("Chat:Limits:KeepAliveInterval must be between 00:00:01 and 01:00:00"));
    }

    [Test]
    public async Task A_misspelt_setting_is_named_in_a_warning_at_start_and_a_known_one_is_not()
    {
        await using var gateway = new TestGateway(new()
        {
            ["Chat:Limits:MaxFrameByte"] = "5",
            ["Chat:Limit:MaxFrameBytes"] = "5",
            ["Chat:Security:AllowedOrigins:0"] = "https://chat.example.com",
            ["Chat:Limits:maxcontentlength"] = "100",
        }).Start();

        var warnings = gateway.Logs.Lines.Where(l => l.Contains("is not one the gateway reads")).ToList();

        Assert.That(warnings, Has.Count.EqualTo(2), string.Join("\n", warnings));
        Assert.That(warnings, Has.One.Contains("Chat:Limits:MaxFrameByte is not one"));
        Assert.That(warnings, Has.One.Contains("Chat:Limit is not one"));
    }

    // A new options class that UnknownSettings does not know would have every one of its keys called misspelt.
    [Test]
    public void Every_setting_of_every_options_class_is_one_the_unknown_settings_check_knows()
    {
        var sections = new[] { typeof(ChatLimitsOptions).Assembly, typeof(UnknownSettings).Assembly }
            .SelectMany(assembly => assembly.GetTypes())
            .Select(type => (Type: type, Section: type.GetField("Section", System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)?.GetRawConstantValue() as string))
            .Where(found => found.Section?.StartsWith("Chat:", StringComparison.Ordinal) == true)
            .ToList();
        var settings = sections.SelectMany(found => found.Type.GetProperties().Select(p => KeyValuePair.Create($"{found.Section}:{p.Name}", (string?)"x")));
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();

        Assert.That(sections, Has.Count.GreaterThanOrEqualTo(7));
        Assert.That(UnknownSettings.Find(configuration), Is.Empty);
    }

    [Test]
    public void A_send_queue_too_small_for_any_frame_limit_names_a_minimum_that_would_start()
    {
        var failure = StartFailure(new() { ["Chat:Limits:MaxFrameBytes"] = "1024", ["Chat:Limits:SendQueueMaxBytes"] = "5000" });

        Assert.That(AllMessages(failure), Does.Contain("Chat:Limits:SendQueueMaxBytes must be between 10240 and"));
    }

    [Test]
    public void Outside_Development_the_gateway_refuses_to_start_without_a_signing_key()
    {
        var failure = StartFailure([], environment: "Production");

        Assert.That(AllMessages(failure), Does.Contain("Chat:Auth:SigningKey"));
    }

    [Test]
    public void A_missing_signing_key_and_a_clock_skew_out_of_range_are_both_named()
    {
        var failure = StartFailure(new() { ["Chat:Auth:ClockSkew"] = "01:00:00" }, environment: "Production");

        Assert.That(AllMessages(failure), Does.Contain("Chat:Auth:SigningKey is not set").And.Contain("Chat:Auth:ClockSkew must be between"));
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

    [Test]
    public void A_drain_and_close_that_would_outlast_the_hosts_shutdown_timeout_stop_the_gateway_naming_the_keys()
    {
        var failure = StartFailure(new() { ["Chat:Shutdown:DrainDelay"] = "00:00:26", ["shutdownTimeoutSeconds"] = "30" });

        Assert.That(AllMessages(failure), Does.Contain("Chat:Shutdown:DrainDelay").And.Contain("Chat:Limits:CloseTimeout").And.Contain("shutdownTimeoutSeconds"));
    }

    // The host reads only digits and keeps its 30 s otherwise, without a word.
    [TestCase("45s")]
    [TestCase("-1")]
    [TestCase("99999999999")]
    public void A_shutdown_timeout_that_is_not_a_whole_number_of_seconds_stops_the_gateway_naming_the_key(string value)
    {
        var failure = StartFailure(new() { ["shutdownTimeoutSeconds"] = value, ["Chat:Limits:MaxFrameBytes"] = "10" });

        Assert.That(AllMessages(failure), Does.Contain($"shutdownTimeoutSeconds is '{value}', which is not a whole number of seconds.")
            .And.Contain("Chat:Limits:MaxFrameBytes must be between"));
    }

    [Test]
    public async Task A_drain_cut_short_by_the_hosts_shutdown_timeout_ends_without_an_exception()
    {
        var drain = new ShutdownDrain(Options.Create(new ChatShutdownOptions { DrainDelay = TimeSpan.FromMinutes(1) }));
        using var hostGivesUp = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));

        await Assert.ThatAsync(() => drain.StoppingAsync(hostGivesUp.Token), Throws.Nothing);
    }

    // Only a failure the entry point states itself is kept out of the host's log: a bug keeps its stack trace there.
    [Test]
    public void A_failure_to_start_that_is_a_bug_is_still_logged_by_the_host()
    {
        var gateway = new TestGateway(services: services => services.AddHostedService<FailingStart>());
        try
        {
            Assert.That(() => gateway.Start(), Throws.InvalidOperationException.With.Message.EqualTo(FailingStart.Bug));
            Assert.That(gateway.Logs.Lines, Has.Some.Contains("Hosting failed to start").And.Contains(FailingStart.Bug));
        }
        finally
        {
            gateway.Dispose();
        }
    }

    private sealed class FailingStart : IHostedService
    {
        public const string Bug = "a bug in a service's start";

        public Task StartAsync(CancellationToken cancellationToken) => throw new InvalidOperationException(Bug);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    // The built gateway in a process of its own, as an operator starts it: what it prints and its exit code.

    [TestCase("Chat:Limits:MaxFrameBytes", "10")]
    [TestCase("Chat:Limits:KeepAliveInterval", "abc")]
    [TestCase("Chat:Metrics:Path", "metrics")]
    [TestCase("Chat:Auth:ClockSkew", "01:00:00")]
    [TestCase("Chat:Shutdown:DrainDelay", "00:01:00")]
    [TestCase("Chat:Database:ApplySchemaOnStartup", "maybe")]
    [TestCase("Chat:Metrics:Path", "/health/ready")]
    [TestCase("shutdownTimeoutSeconds", "abc")]
    [TestCase("Logging:LogLevel:Default", "Verbose")]
    [TestCase("Logging:Console:LogLevel:Chat.Core", "Warn")]
    public async Task A_bad_setting_ends_the_gateway_process_with_exit_code_1_and_one_line_naming_the_key(string key, string value)
    {
        var run = await RunGatewayProcessAsync(new() { [key] = value });

        AssertOneLineFailure(run, key);
    }

    [Test]
    public async Task Bad_settings_in_several_sections_are_all_named_in_the_one_line()
    {
        var run = await RunGatewayProcessAsync(new()
        {
            ["Chat:Limits:MaxFrameBytes"] = "10",
            ["Chat:Writer:MaxBatchSize"] = "0",
            ["Chat:Security:AllowedOrigins:0"] = "not-an-origin",
        });

        AssertOneLineFailure(run, "Chat:Limits:MaxFrameBytes");
        Assert.That(run.Error, Does.Contain("Chat:Writer:MaxBatchSize").And.Contain("Chat:Security:AllowedOrigins"), run.ToString());
        Assert.That(run.Error.Split("Chat:Limits:MaxFrameBytes"), Has.Length.EqualTo(2), "named once: " + run);
    }

    // The binder stops at the first value it cannot convert: the others, and the values out of range, were named
    // only once that one was fixed, one start at a time.
    [Test]
    public async Task Values_that_are_not_numbers_are_named_in_the_one_line_with_the_other_bad_settings()
    {
        var run = await RunGatewayProcessAsync(new()
        {
            ["Chat:Limits:MaxFrameBytes"] = "abc",
            ["Chat:Limits:MaxContentLength"] = "0",
            ["Chat:Limits:KeepAliveInterval"] = "soon",
            ["Chat:Writer:MaxBatchSize"] = "0",
            ["Chat:Metrics:Enabled"] = "yes",
        });

        AssertOneLineFailure(run, "Chat:Limits:MaxFrameBytes is 'abc', which is not a whole number.");
        Assert.That(run.Error, Does.Contain("Chat:Limits:KeepAliveInterval is 'soon', which is not a duration (hh:mm:ss).")
            .And.Contain("Chat:Metrics:Enabled is 'yes', which is not true or false.")
            .And.Contain("Chat:Limits:MaxContentLength must be between")
            .And.Contain("Chat:Writer:MaxBatchSize must be between"), run.ToString());
        Assert.That(run.Error, Does.Not.Contain("MaxFrameBytes must be between").And.Not.Contain("KeepAliveInterval must be between"),
            "a value that is not a number is not also called out of range: " + run);
    }

    // The logging stack reads its levels while the app is built, before the gateway's own validation, and stops at
    // the first one it cannot read with a message that does not name the key.
    [Test]
    public async Task A_log_level_that_is_not_one_is_named_in_the_one_line_with_the_other_bad_settings()
    {
        var run = await RunGatewayProcessAsync(new()
        {
            ["Logging:LogLevel:Default"] = "Verbose",
            ["Logging:Console:LogLevel:Microsoft"] = "Warn",
            ["Logging:LogLevel:Chat"] = "debug",
            ["Chat:Limits:MaxFrameBytes"] = "10",
        });

        AssertOneLineFailure(run, "Logging:LogLevel:Default is 'Verbose', which is not a log level (Trace, Debug, Information, Warning, Error, Critical or None).");
        Assert.That(run.Error, Does.Contain("Logging:Console:LogLevel:Microsoft is 'Warn'")
            .And.Contain("Chat:Limits:MaxFrameBytes must be between"), run.ToString());
        Assert.That(run.Error, Does.Not.Contain("Logging:LogLevel:Chat"), "a level in lower case is one: " + run);
    }

    [TestCase(null, "Chat:Auth:SigningKey is not set")]
    [TestCase(ChatAuthOptions.DevelopmentSigningKey, "development key")]
    public async Task Outside_Development_a_missing_or_documented_key_ends_the_gateway_process_with_one_line(string? key, string expected)
    {
        var run = await RunGatewayProcessAsync(new() { ["Chat:Auth:SigningKey"] = key }, environment: "Production");

        AssertOneLineFailure(run, expected);
    }

    [TestCase("", "ConnectionStrings:Chat is not set")]
    [TestCase("Hots=db;Password=hunter2-secret", "ConnectionStrings:Chat is not a valid")]
    [TestCase("unknown-database", "ConnectionStrings:Chat")]
    public async Task A_bad_connection_string_ends_the_gateway_process_with_one_line_naming_the_key_and_not_the_password(string connectionString, string expected)
    {
        if (connectionString == "unknown-database")
        {
            connectionString = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString)
            {
                Database = "chat_test_no_such_database",
                Password = "hunter2-secret",
            }.ConnectionString;
        }

        var run = await RunGatewayProcessAsync([], connectionString: connectionString);

        AssertOneLineFailure(run, expected);
        Assert.That(run.Output + run.Error, Does.Not.Contain("hunter2"), run.ToString());
    }

    [Test]
    public async Task A_listen_address_in_use_ends_the_gateway_process_with_one_line_naming_it()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;

        var run = await RunGatewayProcessAsync([], urls: $"http://127.0.0.1:{port}");

        AssertOneLineFailure(run, $"Failed to bind to address http://127.0.0.1:{port}: address already in use.");
    }

    // The listen address used to be tried only once the schema was applied: with the database down as well, the
    // operator waited 30 s to be told about the database, and learnt of the address only once that was fixed.
    [Test]
    public async Task A_listen_address_in_use_is_named_at_once_even_while_the_database_is_down()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var nobody = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString) { Port = UnusedPort() }.ConnectionString;

        var run = await RunGatewayProcessAsync([], connectionString: nobody, urls: $"http://127.0.0.1:{port}");

        AssertOneLineFailure(run, $"Failed to bind to address http://127.0.0.1:{port}: address already in use.");
        Assert.That(run.Output, Does.Not.Contain("Waiting for PostgreSQL"), run.ToString());
    }

    // While it waits for the database the gateway listens, but serves nothing that needs the schema.
    [Test]
    public async Task While_the_gateway_waits_for_PostgreSQL_it_is_live_not_ready_and_answers_everything_else_503()
    {
        var nobody = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString) { Port = UnusedPort() }.ConnectionString;
        var port = UnusedPort();
        HttpResponseMessage? live = null, ready = null, api = null, socket = null;
        string readyBody = "";

        var run = await RunGatewayProcessAsync([], connectionString: nobody, urls: $"http://127.0.0.1:{port}", whileRunning: async process =>
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(5) };
            await Eventually.TrueAsync(async () =>
            {
                try
                {
                    live = await http.GetAsync("/health/live");
                    return true;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, "the gateway listens", TimeSpan.FromSeconds(20));
            ready = await http.GetAsync("/health/ready");
            readyBody = await ready.Content.ReadAsStringAsync();
            api = await http.GetAsync("/api/conversations");
            using var upgrade = new HttpRequestMessage(HttpMethod.Get, "/ws");
            upgrade.Headers.Connection.Add("Upgrade");
            upgrade.Headers.Upgrade.Add(new System.Net.Http.Headers.ProductHeaderValue("websocket"));
            upgrade.Headers.Add("Sec-WebSocket-Version", "13");
            upgrade.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(new byte[16]));
            socket = await http.SendAsync(upgrade);
            using var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            await kill.WaitForExitAsync();
        });

        Assert.That(run.Exit, Is.EqualTo(0), run.ToString());
        Assert.That(live!.StatusCode, Is.EqualTo(System.Net.HttpStatusCode.OK), run.ToString());
        Assert.That(ready!.StatusCode, Is.EqualTo(System.Net.HttpStatusCode.ServiceUnavailable), run.ToString());
        Assert.That(readyBody, Is.EqualTo("""{"status":"starting"}"""));
        Assert.That(api!.StatusCode, Is.EqualTo(System.Net.HttpStatusCode.ServiceUnavailable), run.ToString());
        Assert.That(socket!.StatusCode, Is.EqualTo(System.Net.HttpStatusCode.ServiceUnavailable), run.ToString());
    }

    // 192.0.2.1 is reserved for documentation (RFC 5737): no machine has it. Kestrel's socket error for it named no
    // address and escaped the entry point as an unhandled exception (exit 134).
    [Test]
    public async Task A_listen_address_this_machine_does_not_have_ends_the_gateway_process_with_one_line_naming_it()
    {
        var run = await RunGatewayProcessAsync([], urls: "http://192.0.2.1:0");

        AssertOneLineFailure(run, "Failed to listen on http://192.0.2.1:0 (--urls, ASPNETCORE_URLS or ASPNETCORE_HTTP_PORTS): ");
    }

    [Test]
    public async Task A_listen_address_that_is_not_a_url_ends_the_gateway_process_with_one_line()
    {
        var run = await RunGatewayProcessAsync([], urls: "htp:/bad");

        AssertOneLineFailure(run, "The listen address (--urls, ASPNETCORE_URLS or ASPNETCORE_HTTP_PORTS) is not a URL");
    }

    // Kestrel also takes endpoints from its configuration section, in place of --urls (which RunGatewayProcessAsync passes too).
    [TestCase("Url", "htp:/bad", "The listen address (Kestrel:Endpoints:Web:Url) is not a URL: Invalid url: 'htp:/bad'")]
    [TestCase("Url", "http://192.0.2.1:0", "Failed to listen on http://192.0.2.1:0 (Kestrel:Endpoints:Web:Url): ")]
    [TestCase("Protocols", "Http1", "Kestrel:Endpoints:Web:Url is not set: ")]
    public async Task A_Kestrel_endpoint_it_cannot_listen_on_ends_the_gateway_process_with_one_line_naming_the_setting(string key, string value, string expected)
    {
        var run = await RunGatewayProcessAsync(new() { [$"Kestrel:Endpoints:Web:{key}"] = value });

        AssertOneLineFailure(run, expected);
    }

    // What an orchestrator does to a gateway whose database is down: stops it while it waits for PostgreSQL.
    [Test]
    public async Task SIGTERM_while_the_gateway_waits_for_PostgreSQL_ends_it_with_exit_code_0_and_no_crash()
    {
        var nobody = new NpgsqlConnectionStringBuilder(TestDatabase.ConnectionString) { Port = UnusedPort() }.ConnectionString;

        var run = await RunGatewayProcessAsync([], connectionString: nobody, whileRunning: async process =>
        {
            // It waits up to 30 s, saying so every second; by 5 s it has long been waiting (and handling signals).
            await Task.Delay(TimeSpan.FromSeconds(5));
            using var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            await kill.WaitForExitAsync();
        });

        Assert.That(run.Exit, Is.EqualTo(0), run.ToString());
        Assert.That(run.Output, Does.Contain("Waiting for PostgreSQL"), run.ToString());
        Assert.That(run.Error, Is.EqualTo("The gateway was stopped before it finished starting."), run.ToString());
    }

    private static int UnusedPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    // A failure inside the host's start (the database, Kestrel's listen) is not logged by the host as well: the line
    // on stderr says it, once and without a stack trace.
    private static void AssertOneLineFailure(ProcessRun run, string expected)
    {
        Assert.That(run.Output, Does.Not.Contain("Hosting failed to start"), run.ToString());
        Assert.That(run.Exit, Is.EqualTo(1), run.ToString());
        Assert.That(run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(1), run.ToString());
        Assert.That(run.Error, Does.StartWith("The gateway cannot start: ").And.Contain(expected), run.ToString());
        Assert.That(run.Output + run.Error, Does.Not.Contain("Unhandled exception"), run.ToString());
        Assert.That(run.Output + run.Error, Does.Not.Contain("   at "), run.ToString());
    }

    private sealed record ProcessRun(int Exit, string Output, string Error)
    {
        public override string ToString() => $"exit {Exit}\nstdout:\n{Output}\nstderr:\n{Error}";
    }

    /// <param name="urls">The listen address; by default port 0, so that a gateway that started by mistake takes no port another test needs.</param>
    /// <param name="whileRunning">Done to the process once it has started, while its output is read.</param>
    private static async Task<ProcessRun> RunGatewayProcessAsync(
        Dictionary<string, string?> settings, string environment = "Development", string? connectionString = null,
        string urls = "http://127.0.0.1:0", Func<Process, Task>? whileRunning = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(ExternalGateway.AssemblyPath)!,
        };
        start.ArgumentList.Add(ExternalGateway.AssemblyPath);
        start.ArgumentList.Add($"--urls={urls}");
        foreach (var (key, value) in settings)
        {
            if (value is not null)
            {
                start.ArgumentList.Add($"--{key}={value}");
            }
        }
        start.Environment["ASPNETCORE_ENVIRONMENT"] = environment;
        start.Environment["ConnectionStrings__Chat"] = connectionString ?? TestDatabase.ConnectionString;
        using var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (whileRunning is not null)
        {
            await whileRunning(process);
        }
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            Assert.Fail($"The gateway was still running after 60 s:\n{await output}\n{await error}");
        }
        return new ProcessRun(process.ExitCode, (await output).Trim(), (await error).Trim());
    }
}
