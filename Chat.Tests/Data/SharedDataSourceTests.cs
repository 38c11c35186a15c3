using Chat.Data;
using Chat.Tests.Infrastructure;
using Npgsql;

namespace Chat.Tests.Data;

public sealed class SharedDataSourceTests
{
    private static int MaxPoolSizeOf(string connectionString)
    {
        using var source = SharedDataSource.Build(connectionString);
        return new NpgsqlConnectionStringBuilder(source.ConnectionString).MaxPoolSize;
    }

    [Test]
    public void Without_a_pool_size_in_the_connection_string_the_shared_pool_holds_sixteen() =>
        Assert.That(MaxPoolSizeOf(TestDatabase.ConnectionString), Is.EqualTo(SharedDataSource.DefaultMaxPoolSize));

    [TestCase("Maximum Pool Size=40")]
    [TestCase("maxpoolsize=40")]
    public void A_pool_size_in_the_connection_string_is_kept(string setting) =>
        Assert.That(MaxPoolSizeOf($"{TestDatabase.ConnectionString};{setting}"), Is.EqualTo(40));

    [Test]
    public void A_minimum_above_sixteen_raises_the_default_to_it() =>
        Assert.That(MaxPoolSizeOf($"{TestDatabase.ConnectionString};Minimum Pool Size=24"), Is.EqualTo(24));

    [Test]
    public async Task The_shared_pool_opens_working_connections()
    {
        await using var source = SharedDataSource.Build(TestDatabase.ConnectionString);
        await using var command = source.CreateCommand("SELECT 1");
        Assert.That(await command.ExecuteScalarAsync(), Is.EqualTo(1));
    }
}
