using Chat.Core.Options;
using Chat.Data;
using Chat.Data.Schema;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Chat.Gateway.Hosting;

/// <summary>
/// Checks at start that the connection string is usable and, unless <c>Chat:Database:ApplySchemaOnStartup</c> is
/// false, applies <c>schema.sql</c>. A database that is not up yet is waited for (about 30 s) before the gateway gives
/// up with a message that says what failed.
/// </summary>
/// <remarks>
/// The schema is applied once the server listens (<see cref="StartedAsync"/>, after every service's start, the
/// server's included), not before: a listen address in use is then reported at once, not after the wait for a
/// database that is down, which would only name the database. Nothing but health is served until the start is over
/// (<see cref="StartGate"/>), so no request meets a schema that is not there yet, and readiness waits for it.
/// </remarks>
internal sealed partial class DatabaseStartup(
    IServiceProvider services,
    IOptions<ChatDatabaseOptions> options,
    ILogger<DatabaseStartup> logger) : IHostedLifecycleService
{
    private static readonly TimeSpan WaitForDatabase = TimeSpan.FromSeconds(30);

    private string? _schemaPath;

    /// <summary>The settings, before the server listens: a bad one stops the gateway without a listen failure beside it.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Resolving the data source validates ConnectionStrings:Chat.
        _ = services.GetRequiredService<NpgsqlDataSource>();
        if (!options.Value.ApplySchemaOnStartup)
        {
            return Task.CompletedTask;
        }

        var path = Path.IsPathRooted(options.Value.SchemaPath)
            ? options.Value.SchemaPath
            : Path.Combine(AppContext.BaseDirectory, options.Value.SchemaPath);
        if (!File.Exists(path))
        {
            throw new GatewayStartupException($"Chat:Database:SchemaPath: {path} does not exist.");
        }
        _schemaPath = path;
        return Task.CompletedTask;
    }

    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        if (_schemaPath is not { } path)
        {
            return;
        }
        var dataSource = services.GetRequiredService<NpgsqlDataSource>();
        var initializer = services.GetRequiredService<SchemaInitializer>();
        var deadline = DateTime.UtcNow + WaitForDatabase;
        while (true)
        {
            try
            {
                await initializer.ApplyAsync(path, cancellationToken);
                SchemaApplied(logger, path);
                return;
            }
            catch (Exception e) when (DatabaseResilience.IsTransient(e) && DateTime.UtcNow < deadline)
            {
                WaitingForDatabase(logger, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            }
            catch (Exception e) when (e is NpgsqlException or ArgumentException or TimeoutException)
            {
                throw new GatewayStartupException(
                    $"Could not apply the schema through ConnectionStrings:Chat ({Describe(dataSource)}): {e.Message}", e);
            }
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Where the connection string points, without its credentials.</summary>
    private static string Describe(NpgsqlDataSource dataSource)
    {
        var settings = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString);
        return $"host {settings.Host}, port {settings.Port}, database {settings.Database ?? settings.Username}";
    }

    [LoggerMessage(1, LogLevel.Information, "Schema applied from {Path}")]
    private static partial void SchemaApplied(ILogger logger, string path);

    [LoggerMessage(2, LogLevel.Warning, "Waiting for PostgreSQL: {Reason}")]
    private static partial void WaitingForDatabase(ILogger logger, string reason);
}
