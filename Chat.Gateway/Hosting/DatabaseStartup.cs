using Chat.Core.Options;
using Chat.Data;
using Chat.Data.Schema;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Chat.Gateway.Hosting;

/// <summary>
/// Runs before Kestrel accepts anything: checks that the connection string is usable and, unless
/// <c>Chat:Database:ApplySchemaOnStartup</c> is false, applies <c>schema.sql</c>. A database that is not up yet
/// is waited for (about 30 s) before the gateway gives up with a message that says what failed.
/// </summary>
internal sealed partial class DatabaseStartup(
    IServiceProvider services,
    IOptions<ChatDatabaseOptions> options,
    ILogger<DatabaseStartup> logger) : IHostedService
{
    private static readonly TimeSpan WaitForDatabase = TimeSpan.FromSeconds(30);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // Resolving the data source validates ConnectionStrings:Chat.
        var dataSource = services.GetRequiredService<NpgsqlDataSource>();
        if (!options.Value.ApplySchemaOnStartup)
        {
            return;
        }

        var path = Path.IsPathRooted(options.Value.SchemaPath)
            ? options.Value.SchemaPath
            : Path.Combine(AppContext.BaseDirectory, options.Value.SchemaPath);
        if (!File.Exists(path))
        {
            throw new GatewayStartupException($"Chat:Database:SchemaPath: {path} does not exist.");
        }

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
