using System.Data.Common;
using Npgsql;

namespace Chat.Data;

/// <summary>
/// The pool shared by everything but the message writer: connect-time catch-up, read receipts, edits, sync, the
/// HTTP API. Its size is the connection string's <c>Maximum Pool Size</c> when it names one, and
/// <see cref="DefaultMaxPoolSize"/> otherwise, not Npgsql's default of 100.
/// </summary>
/// <remarks>
/// A thousand sockets connecting at once each run a few short queries, and a pool of 100 opened 100 PostgreSQL
/// backends for that burst. They then idled until Npgsql pruned them five minutes later, and both cost the
/// messages' path (1,000 msg/s, gateway only): while they idled, delivery p50 was 3.3 to 3.6 ms against 2.0 to
/// 2.3 ms after; when they were closed together, delivery stalled for half a second (p99 443 to 507 ms over that
/// minute). With 16, the same burst connected as fast, p50 was 2.6 ms at once and the pruning cost 58 ms.
/// </remarks>
public static class SharedDataSource
{
    public const int DefaultMaxPoolSize = 16;

    // Npgsql's names for the setting; connection string keys are case-insensitive.
    private static readonly string[] MaxPoolSizeKeys = ["Maximum Pool Size", "MaxPoolSize"];

    public static NpgsqlDataSource Build(string connectionString)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        var given = new DbConnectionStringBuilder { ConnectionString = connectionString };
        if (!MaxPoolSizeKeys.Any(given.ContainsKey))
        {
            var settings = builder.ConnectionStringBuilder;
            settings.MaxPoolSize = Math.Max(DefaultMaxPoolSize, settings.MinPoolSize);
        }
        return builder.Build();
    }
}
