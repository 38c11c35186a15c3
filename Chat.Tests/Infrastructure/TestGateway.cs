using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.WebSockets;
using Chat.Core.Auth;
using Chat.Core.Options;
using Chat.Data.Conversations;
using Chat.Data.Users;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Chat.Tests.Infrastructure;

/// <summary>
/// The real gateway in-process, on Kestrel at a random loopback port, against the test database.
/// Clients reach it over real sockets. Settings may be overridden per instance.
/// </summary>
public sealed class TestGateway : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;
    private readonly string _environment;
    private readonly Action<IServiceCollection>? _services;

    /// <param name="services">Extra registrations, after the gateway's own.</param>
    public TestGateway(Dictionary<string, string?>? settings = null, string? connectionString = null, string environment = "Development", Action<IServiceCollection>? services = null)
    {
        _environment = environment;
        _services = services;
        _settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:Chat"] = connectionString ?? TestDatabase.ConnectionString,
            ["Chat:Database:SchemaPath"] = TestDatabase.SchemaPath,
            // Tests send in bursts far beyond what a person types: rate limits are off unless a fixture is about them.
            ["Chat:Limits:MessageRatePerSecond"] = "100000",
            ["Chat:Limits:MessageBurst"] = "1000000",
            ["Chat:Limits:TypingRatePerSecond"] = "100000",
            ["Chat:Limits:TypingBurst"] = "1000000",
            ["Chat:Limits:PresenceRatePerSecond"] = "100000",
            ["Chat:Limits:PresenceBurst"] = "1000000",
            ["Chat:Limits:ApiRequestsPerSecond"] = "100000",
            ["Chat:Limits:ApiBurst"] = "1000000",
            ["Chat:Limits:HandshakesPerSecond"] = "100000",
            ["Chat:Limits:HandshakeBurst"] = "1000000",
        };
        foreach (var (key, value) in settings ?? [])
        {
            _settings[key] = value;
        }
        this.UseKestrel(0);
    }

    public CapturedLogs Logs { get; } = new();

    public Uri HttpAddress { get; private set; } = null!;

    public Uri WebSocketAddress => new UriBuilder(HttpAddress) { Scheme = "ws", Path = "/ws" }.Uri;

    public ChatAuthOptions AuthOptions => new() { SigningKey = ChatAuthOptions.DevelopmentSigningKey };

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment(_environment);
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
        builder.ConfigureLogging(logging =>
        {
            logging.SetMinimumLevel(LogLevel.Trace);
            logging.AddProvider(Logs);
        });
        if (_services is not null)
        {
            builder.ConfigureServices(_services);
        }
    }

    /// <summary>Starts the server and learns its address; throws with the gateway's message when it refuses to start.</summary>
    public TestGateway Start()
    {
        // A gateway that cannot start (a bad setting, no database) says why in one line on stderr and returns from
        // its entry point, as it exits with 1 in a process of its own: the test host then has a host that never
        // listened. The tests do not run in parallel, so the console is theirs while the entry point runs.
        var error = new StringWriter();
        var console = Console.Error;
        Console.SetError(TextWriter.Synchronized(error));
        try
        {
            StartServer();
        }
        finally
        {
            Console.SetError(console);
        }
        if (!Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted.IsCancellationRequested)
        {
            throw new InvalidOperationException(error.ToString().Trim() is { Length: > 0 } reason ? reason : "The gateway did not start.");
        }
        var addresses = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        HttpAddress = new Uri(addresses.First().Replace("[::]", "127.0.0.1").Replace("localhost", "127.0.0.1"));
        return this;
    }

    public string TokenFor(string externalId, string? name = null, string? picture = null, TimeSpan? lifetime = null) =>
        ChatTokens.Issue(AuthOptions, externalId, name, picture, lifetime ?? TimeSpan.FromHours(1));

    public HttpClient CreateHttpClient(string? externalId = null)
    {
        var client = new HttpClient { BaseAddress = HttpAddress };
        if (externalId is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TokenFor(externalId));
        }
        return client;
    }

    /// <summary>Connects a user and reads up to <c>ready</c>; the welcome, catch-up and ready frames are kept on the client.</summary>
    public async Task<ChatTestClient> ConnectAsync(TestUser user, bool catchup = true, string? name = null)
    {
        var client = await ChatTestClient.ConnectAsync(WebSocketAddress, TokenFor(user.ExternalId, name ?? user.Name), catchup ? null : "catchup=false");
        await client.ReadUntilReadyAsync();
        return client;
    }

    /// <summary>A user that exists in the database but has not connected yet.</summary>
    public async Task<TestUser> CreateUserAsync(string? prefix = null)
    {
        var externalId = $"{prefix ?? "user"}-{Guid.NewGuid():N}"[..24];
        var profile = await Services.GetRequiredService<UserRepository>().UpsertFromClaimsAsync(externalId, externalId, null, CancellationToken.None);
        return new TestUser(profile.Id, externalId, externalId);
    }

    public async Task<TestUser[]> CreateUsersAsync(int count, string? prefix = null)
    {
        var users = new TestUser[count];
        for (var i = 0; i < count; i++)
        {
            users[i] = await CreateUserAsync(prefix);
        }
        return users;
    }

    /// <summary>The status the HTTP API's conversation detail shows for <paramref name="member"/> to <paramref name="viewer"/>.</summary>
    public async Task<string?> PresenceShownOverHttpAsync(long conversation, TestUser viewer, TestUser member)
    {
        using var http = CreateHttpClient(viewer.ExternalId);
        var detail = await http.GetFromJsonAsync<System.Text.Json.JsonElement>($"/api/conversations/{conversation}");
        return detail.GetProperty("members").EnumerateArray().Single(m => m.Str("externalId") == member.ExternalId).Str("presenceStatus");
    }

    public async Task<long> CreateConversationAsync(params TestUser[] members) =>
        (await Services.GetRequiredService<ConversationRepository>().CreateAsync(
            "test", members.Length > 2, directKey: null, members.Select(m => m.Id).ToArray(), CancellationToken.None)).ConversationId;
}

public sealed record TestUser(long Id, string ExternalId, string Name);
