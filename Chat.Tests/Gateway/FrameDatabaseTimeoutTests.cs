using Chat.Tests.Infrastructure;
using Dapper;

namespace Chat.Tests.Gateway;

/// <summary>
/// The database work of <c>sync</c>, <c>read</c>, <c>edit</c> and <c>delete</c> is bounded by
/// <c>Chat:Database:RequestTimeout</c>, as an API request's and the catch-up's are: a frame the database does not
/// serve in that time (a table locked by a schema change here; the shared pool held by a reconnect storm, or a
/// lock held by a long transaction, in production) is answered <c>error internal</c> then, not whenever the database
/// answers, and the connection goes on with its next frame.
/// </summary>
public sealed class FrameDatabaseTimeoutTests : ChangeFrameTest
{
    protected override Dictionary<string, string?> Settings => new() { ["Chat:Database:RequestTimeout"] = "00:00:02" };

    [TestCase("sync")]
    [TestCase("read")]
    [TestCase("edit")]
    [TestCase("delete")]
    public async Task A_frame_whose_database_work_outlasts_the_request_timeout_is_answered_internal_and_its_retry_succeeds(string type)
    {
        var (_, a, b, conversation, fromBob, own, frame) = await SetUpAsync(type);

        System.Text.Json.JsonElement? answer;
        await using (var connection = await TestDatabase.DataSource.OpenConnectionAsync())
        {
            await using var schemaChange = await connection.BeginTransactionAsync();
            // Every one of these frames reads the user's membership first.
            await connection.ExecuteAsync("LOCK TABLE conversation_participants IN ACCESS EXCLUSIVE MODE", transaction: schemaChange);
            await a.SendAsync(frame);
            // Far past the 2 s: a frame still waiting then waits for the lock (or Npgsql's 30 s command timeout).
            answer = await a.TryNextAsync(f => f.Type() == "error", TimeSpan.FromSeconds(15));
            await schemaChange.RollbackAsync();
        }

        Assert.That(answer, Is.Not.Null, "the frame was answered while the table was still locked");
        Assert.That((answer!.Value.Str("code"), answer.Value.Str("frameType"), answer.Value.Long("conversationId")), Is.EqualTo(("internal", type, conversation)));
        Assert.That(answer.Value.Str("message"), Is.EqualTo("The database did not answer in time; it is safe to retry."));

        // The connection is usable, and the frame, sent again, does what it says (§7: retrying is safe).
        await a.SendAsync(frame);
        switch (type)
        {
            case "sync":
                Assert.That((await a.NextAsync("synced")).Long("lastSeq"), Is.EqualTo(2));
                break;
            case "read":
                Assert.That((await b.NextAsync("read")).Long("messageId"), Is.EqualTo(fromBob.Long("messageId")));
                break;
            case "edit":
                Assert.That((await b.NextAsync("messageEdited")).Str("content"), Is.EqualTo("edited"));
                break;
            default:
                Assert.That((await b.NextAsync("messageDeleted")).Long("messageId"), Is.EqualTo(own.Long("messageId")));
                break;
        }
    }
}
