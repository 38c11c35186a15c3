using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

/// <summary>
/// A <c>read</c>, <c>edit</c> or <c>delete</c> that the gateway has received is carried out, and once committed
/// announced to the conversation, whether or not its sender is still connected: as a message the writer has taken,
/// and as a membership change whose caller hangs up. The frame is held at the conversation's row lock, which each
/// of them takes, while the sender's socket goes away.
/// </summary>
public sealed class FrameHangUpTests : ChangeFrameTest
{
    [TestCase("read")]
    [TestCase("edit")]
    [TestCase("delete")]
    public async Task A_change_whose_sender_hangs_up_while_it_waits_for_the_database_is_stored_and_announced_to_the_others(string type)
    {
        var (alice, a, b, conversation, fromBob, own, frame) = await SetUpAsync(type);

        await using (await Sql.HoldAsync("SELECT 1 FROM conversations WHERE id = @conversation FOR UPDATE", new { conversation }))
        {
            await a.SendAsync(frame);
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() > 0, "the frame waits for the conversation's row");
            a.Abort();
            // Time for the gateway to see the socket go (a cancelled statement would leave the lock's queue now).
            await Task.Delay(TimeSpan.FromMilliseconds(500));
        }

        switch (type)
        {
            case "read":
                var read = await b.NextAsync("read");
                Assert.That((read.Long("senderId"), read.Long("messageId")), Is.EqualTo((alice.Id, fromBob.Long("messageId"))));
                Assert.That(await Sql.ScalarAsync<long?>(
                    "SELECT last_read_message_id FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @user",
                    new { conversation, user = alice.Id }), Is.EqualTo(fromBob.Long("messageId")));
                break;
            case "edit":
                Assert.That((await b.NextAsync("messageEdited")).Str("content"), Is.EqualTo("edited"));
                Assert.That(await Sql.ScalarAsync<string>("SELECT content FROM messages WHERE id = @id", new { id = own.Long("messageId") }), Is.EqualTo("edited"));
                break;
            default:
                Assert.That((await b.NextAsync("messageDeleted")).Long("messageId"), Is.EqualTo(own.Long("messageId")));
                Assert.That(await Sql.ScalarAsync<bool>("SELECT is_deleted FROM messages WHERE id = @id", new { id = own.Long("messageId") }), Is.True);
                break;
        }
    }
}
