using Chat.Core.Protocol;
using Chat.Gateway.Metrics;
using Chat.Core;
using Chat.Core.Options;
using Chat.Data;
using Chat.Gateway.Api;
using Chat.Gateway.WebSockets;
using Chat.Gateway.Auth;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Chat.Gateway.Hosting;

public static class GatewayBuilderExtensions
{
    public static WebApplicationBuilder AddChatGateway(this WebApplicationBuilder builder)
    {
        var services = builder.Services;

        // The hosting layer logs every request URL, and a browser's access token rides in the query string:
        // those lines stay off whatever the configured level. The gateway's own lines name connections and users,
        // never URLs. The category logs nothing else a gateway needs (a failed start is logged by the host, an
        // exception in a request by Kestrel), and switched off entirely it also stops the hosting layer from
        // keeping a request Activity and log scope for each request: about 0.5 KB for every open socket, which
        // lives inside its handshake request. A tracing listener (OpenTelemetry) still gets its activities.
        // Warning would keep the category's few warnings (an address override) but brings the Activity back, since
        // it is made whenever the category is enabled at any level (HandshakeRetentionTests): the README says so.
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
        builder.Logging.AddFilter("Microsoft.AspNetCore.Server.Kestrel.BadRequests", LogLevel.Warning);
        StartFailureLog.Wrap(services);
        UnreadableLogLevels.PutAside(builder);

        // Validated on start so that a value the binder cannot read ("maybe" for a boolean) is one line at start,
        // not a failure inside the hosted service that the host logs with its stack trace.
        services.AddOptions<ChatDatabaseOptions>().BindConfiguration(ChatDatabaseOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddChatData(sp => ChatConnectionString(sp.GetRequiredService<IConfiguration>()));
        services.AddHostedService<DatabaseStartup>();

        services.AddChatCore();
        services.AddChatAuthentication();
        services.AddOptions<ChatSecurityOptions>()
            .BindConfiguration(ChatSecurityOptions.Section)
            .Configure<IConfiguration>((security, configuration) =>
            {
                // Chat__Security__AllowedOrigins=https://chat.example.com: the binder reads a list only in its indexed
                // form (__0, __1) and drops a plain value without a word, after which every browser gets 403. A plain
                // value is the whole list: added to an indexed list from another source, it would widen that list
                // without anyone seeing it.
                if (configuration[$"{ChatSecurityOptions.Section}:{nameof(ChatSecurityOptions.AllowedOrigins)}"] is { Length: > 0 } list)
                {
                    security.AllowedOrigins = [.. list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];
                }
            })
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<ChatSecurityOptions>, ChatSecurityOptionsValidator>();
        // Kestrel's own limits, from validated Chat:Limits so that one section states every bound.
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<ChatLimitsOptions>>((kestrel, limits) =>
        {
            ChatLimitsOptions value;
            try
            {
                value = limits.Value;
            }
            catch (Exception e) when (e is OptionsValidationException || StartupFailure.Explain(e) is not null)
            {
                // Kestrel is built with the app, before the start-up validation that names every bad setting at
                // once (a value out of range, or one the binder cannot convert): failing here would name only these.
                // The gateway does not start, so Kestrel's defaults are never used.
                return;
            }
            kestrel.Limits.MaxConcurrentUpgradedConnections = value.MaxConnections;
            kestrel.Limits.MaxRequestHeadersTotalSize = value.MaxRequestHeadersBytes;
            kestrel.Limits.RequestHeadersTimeout = value.HandshakeTimeout;
            kestrel.Limits.KeepAliveTimeout = value.HttpKeepAliveTimeout;
        });
        // Kestrel, registered by WebApplication.CreateBuilder: a failure to listen is said in one line.
        ListenFailure.Wrap(services);
        services.AddSingleton<GatewayLifetime>();
        services.AddOptions<ChatShutdownOptions>()
            .BindConfiguration(ChatShutdownOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<ChatShutdownOptions>, ChatShutdownOptionsValidator>();
        services.AddHostedService<ShutdownDrain>();
        services.AddOptions<ChatMetricsOptions>()
            .BindConfiguration(ChatMetricsOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<HandshakeAuthenticator>();
        services.AddSingleton<ApiRateLimiter>();
        services.AddSingleton<HandshakeRateLimiter>();
        services.AddProblemDetails();
        services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.Converters.Add(new UtcTimestampConverter());
            // Text as the WebSocket writes it: non-ASCII, emoji and HTML characters as typed, not as \u escapes.
            json.SerializerOptions.Encoder = JsonTextEncoder.Instance;
        });
        return builder;
    }

    /// <summary>
    /// <c>ConnectionStrings:Chat</c>, checked when the data source is first resolved (while the app is built):
    /// Npgsql's own message names neither the key nor, for a missing one, anything at all. The value is never
    /// repeated, since it may hold a password.
    /// </summary>
    private static string ChatConnectionString(IConfiguration configuration)
    {
        if (configuration.GetConnectionString("Chat") is not { Length: > 0 } connectionString)
        {
            throw new GatewayStartupException(
                "ConnectionStrings:Chat is not set: give the gateway an Npgsql connection string (environment variable ConnectionStrings__Chat).");
        }
        try
        {
            _ = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException e)
        {
            throw new GatewayStartupException($"ConnectionStrings:Chat is not a valid Npgsql connection string: {e.Message}", e);
        }
        return connectionString;
    }

    private sealed class ChatSecurityOptionsValidator : IValidateOptions<ChatSecurityOptions>
    {
        public ValidateOptionsResult Validate(string? name, ChatSecurityOptions options) =>
            options.Validate() is { } failure ? ValidateOptionsResult.Fail(failure) : ValidateOptionsResult.Success;
    }
}
