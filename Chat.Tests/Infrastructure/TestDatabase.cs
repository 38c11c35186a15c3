using Chat.Data.Schema;
using Npgsql;

namespace Chat.Tests;

/// <summary>
/// Prepares the test database once for the whole run: a fresh public schema built from <c>schema.sql</c>.
/// When PostgreSQL is unreachable every test fails with a message that says how to start it.
/// </summary>
[SetUpFixture]
public sealed class TestDatabase
{
    private const string DefaultConnectionString = "Host=127.0.0.1;Port=54329;Username=postgres;Database=chat_test";

    public static string ConnectionString { get; private set; } = DefaultConnectionString;

    public static NpgsqlDataSource DataSource { get; private set; } = null!;

    public static string SchemaPath => Path.Combine(RepositoryRoot, "schema.sql");

    public static string RepositoryRoot
    {
        get
        {
            var directory = new DirectoryInfo(AppContext.BaseDirectory);
            while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "RealtimeChat.sln")))
            {
                directory = directory.Parent;
            }
            return directory?.FullName ?? throw new InvalidOperationException("RealtimeChat.sln not found above " + AppContext.BaseDirectory);
        }
    }

    [OneTimeSetUp]
    public async Task CreateSchema()
    {
        ConnectionString = Environment.GetEnvironmentVariable("ConnectionStrings__Chat") is { Length: > 0 } configured
            ? configured
            : DefaultConnectionString;
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString);

        // The suite wipes the schema: refuse anything that does not look like a test database.
        if (builder.Database is null || !builder.Database.Contains("test", StringComparison.OrdinalIgnoreCase))
        {
            Assert.Fail($"ConnectionStrings__Chat names the database '{builder.Database}'; the tests drop its schema, so they only run " +
                        "against a database whose name contains 'test'. Run ./test, which prepares chat_test.");
        }

        DataSource = NpgsqlDataSource.Create(ConnectionString);
        try
        {
            await using var connection = await DataSource.OpenConnectionAsync();
            await using var reset = new NpgsqlCommand("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;", connection);
            await reset.ExecuteNonQueryAsync();
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InvalidCatalogName)
        {
            Assert.Fail($"PostgreSQL at {builder.Host}:{builder.Port} answers, but has no database {builder.Database}: create it " +
                        $"(createdb -h {builder.Host} -p {builder.Port} {builder.Database}), or run ./test, which creates chat_test.");
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException)
        {
            Assert.Fail($"PostgreSQL is not reachable at {builder.Host}:{builder.Port} (database {builder.Database}): {e.Message}. " +
                        "Start it with ./test (which starts the project's own cluster in .data/postgres and runs the suite), " +
                        "or point ConnectionStrings__Chat at a running server and a database named like *test*.");
        }
        await new SchemaInitializer(DataSource).ApplyAsync(SchemaPath, CancellationToken.None);
    }

    [OneTimeTearDown]
    public async Task Close()
    {
        if (DataSource is not null)
        {
            await DataSource.DisposeAsync();
        }
    }
}
