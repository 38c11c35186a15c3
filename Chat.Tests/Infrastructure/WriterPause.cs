using Chat.Core.Messages;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Chat.Tests.Infrastructure;

/// <summary>
/// Holds a gateway's message writer on one batch so that a test decides what goes into the next one. The
/// <c>messages</c> table is locked against writes, and an outsider sends a message to a conversation that does not
/// exist: that batch stores nothing (the writer's published-id mark does not move) and cannot finish while the lock is
/// held, so whatever is queued meanwhile becomes the next batch, in the order it was queued. Disposing releases it.
/// </summary>
public sealed class WriterPause : IAsyncDisposable
{
    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlTransaction _transaction;
    private readonly ChatTestClient _outsider;
    private readonly string _key;

    private WriterPause(MessageWriter writer, NpgsqlConnection connection, NpgsqlTransaction transaction, ChatTestClient outsider, string key)
    {
        Writer = writer;
        _connection = connection;
        _transaction = transaction;
        _outsider = outsider;
        _key = key;
    }

    public MessageWriter Writer { get; }

    /// <summary>Batches the writer had started when the pause began, the pausing one included.</summary>
    public long BatchesAtPause { get; private set; }

    /// <param name="outsider">A connected client whose message is the held batch; it gets <c>access_denied</c> on release.</param>
    public static async Task<WriterPause> StartAsync(TestGateway gateway, ChatTestClient outsider)
    {
        var writer = gateway.Services.GetRequiredService<MessageWriter>();
        var connection = await TestDatabase.DataSource.OpenConnectionAsync();
        var transaction = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync("LOCK TABLE messages IN EXCLUSIVE MODE", transaction: transaction);

        var pause = new WriterPause(writer, connection, transaction, outsider, "pause-" + Guid.NewGuid().ToString("N"));
        var before = writer.Batches;
        await outsider.SendAsync(new { type = "message", conversationId = long.MaxValue, clientMessageId = pause._key, content = "hold" });
        await Eventually.TrueAsync(() => writer.Batches == before + 1, "the pausing batch starts");
        Assert.That(writer.Queued, Is.Zero, "the pausing batch holds nothing but the outsider's message");
        pause.BatchesAtPause = writer.Batches;
        return pause;
    }

    /// <summary>Waits until <paramref name="count"/> messages wait behind the held batch.</summary>
    public Task WaitQueuedAsync(int count) =>
        Eventually.TrueAsync(() => Writer.Queued == count, $"{count} messages queued behind the held batch (now {Writer.Queued})");

    public async ValueTask DisposeAsync()
    {
        await _transaction.RollbackAsync();
        await _connection.DisposeAsync();
        var answer = await _outsider.NextAsync(f => f.Str("clientMessageId") == _key);
        Assert.That(answer.Str("code"), Is.EqualTo("access_denied"), "the held batch finishes once released");
    }
}
