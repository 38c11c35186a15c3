using System.Net.WebSockets;
using Chat.Tests.Infrastructure;
using Dapper;

namespace Chat.Tests.Gateway;

/// <summary>
/// The catch-up's database reads are bounded by <c>Chat:Database:RequestTimeout</c>, as the handshake's profile is:
/// a connection whose catch-up cannot be read (a table locked by a schema change here; in a reconnect storm, the
/// shared pool held by every other connecting socket) is closed with 1011 "database unavailable" once that time has
/// passed, rather than left after its <c>welcome</c> with no <c>ready</c> for as long as the database takes.
/// </summary>
public sealed class CatchupDatabaseTimeoutTests : GatewayTest
{
    protected override Dictionary<string, string?> Settings => new() { ["Chat:Database:RequestTimeout"] = "00:00:02" };

    [Test]
    public async Task A_catch_up_that_waits_on_the_database_past_the_request_timeout_closes_with_1011_and_the_next_connection_is_served()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob);
        await (await ConnectAsync(bob)).SendMessageAsync(conversation, "while you were away");

        ChatTestClient waiting;
        bool closedWhileLocked;
        await using (var connection = await TestDatabase.DataSource.OpenConnectionAsync())
        {
            await using var schemaChange = await connection.BeginTransactionAsync();
            // The handshake reads the profile from another table: only the catch-up waits.
            await connection.ExecuteAsync("LOCK TABLE conversation_participants IN ACCESS EXCLUSIVE MODE", transaction: schemaChange);
            waiting = Track(await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(alice.ExternalId, alice.Name)));
            // Far past the 2 s: a catch-up still waiting then waits for the lock, and goes on when it goes.
            await Task.WhenAny(waiting.Closed, Task.Delay(TimeSpan.FromSeconds(20)));
            closedWhileLocked = waiting.Closed.IsCompleted;
            await schemaChange.RollbackAsync();
        }

        Assert.That(closedWhileLocked, Is.True, "the server closed the socket while the catch-up could not be read");
        Assert.That(waiting.CloseStatus, Is.EqualTo(WebSocketCloseStatus.InternalServerError));
        Assert.That(waiting.CloseDescription, Is.EqualTo("database unavailable"));
        Assert.That(waiting.ReceivedBeforeClose().Select(f => f.Type()), Is.EqualTo(new[] { "welcome" }), "welcome, then the close: no ready");

        var again = await ConnectAsync(alice);
        Assert.That(again.Catchup.Select(f => f.Str("content")), Is.EqualTo(new[] { "while you were away" }), "once the database answers, so does the catch-up");
    }
}
