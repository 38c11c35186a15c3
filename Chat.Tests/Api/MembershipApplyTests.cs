using System.Net;
using System.Net.Http.Json;
using System.Reflection;
using System.Text.Json;
using Chat.Core.Connections;
using Chat.Core.Conversations;
using Chat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Chat.Tests.Api;

/// <summary>
/// A membership change is committed, then applied to the live sockets. These tests hold the application back (the
/// service's per-user gate, taken through reflection) to reach the moments between the two.
/// </summary>
public sealed class MembershipApplyTests : GatewayTest
{
    // Typing lapses within the time a removal is held back here, so that a lapse can land inside it.
    protected override Dictionary<string, string?> Settings => new() { ["Chat:Limits:TypingTimeout"] = "00:00:01" };

    private SemaphoreSlim MembershipGateOf(long userId) => MembershipGateOf(Gateway, userId);

    private static SemaphoreSlim MembershipGateOf(TestGateway gateway, long userId)
    {
        var service = gateway.Services.GetRequiredService<ConversationService>();
        var gates = (SemaphoreSlim[])typeof(ConversationService)
            .GetField("_membershipGates", BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(service)!;
        return gates[(int)((ulong)userId % (ulong)gates.Length)];
    }

    private static Task<bool> IsActiveAsync(long conversation, long user) => Sql.ScalarAsync<bool>(
        "SELECT COALESCE((SELECT is_active FROM conversation_participants WHERE conversation_id = @conversation AND user_id = @user), false)",
        new { conversation, user });

    /// <summary>
    /// Removes <paramref name="member"/> as <paramref name="remover"/> and runs <paramref name="meanwhile"/> once the
    /// removal has committed (the member's socket was told) but while it is still being applied to the sockets.
    /// </summary>
    private async Task RemoveAsync(long conversation, TestUser remover, TestUser member, ChatTestClient memberSocket, Func<Task> meanwhile)
    {
        using var http = Gateway.CreateHttpClient(remover.ExternalId);
        Task<HttpResponseMessage> removal;
        var gate = MembershipGateOf(member.Id);
        await gate.WaitAsync();
        try
        {
            removal = http.DeleteAsync($"/api/conversations/{conversation}/members/{member.ExternalId}");
            Assert.That((await memberSocket.NextAsync("member")).Str("change"), Is.EqualTo("left"));
            await meanwhile();
            await Task.Delay(TimeSpan.FromMilliseconds(300));
        }
        finally
        {
            gate.Release();
        }
        Assert.That((await removal).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
    }

    // The caller of DELETE goes away once the removal has committed but before it reached the sockets: the
    // removal stands in the database, so it must still cut the removed member's sockets off.
    [Test]
    public async Task A_removal_whose_caller_hangs_up_after_the_commit_still_cuts_the_removed_members_sockets_off()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        var c = await ConnectAsync(carol);
        var fences = Gateway.Services.GetRequiredService<MembershipFences>();

        var gate = MembershipGateOf(carol.Id);
        await gate.WaitAsync();
        try
        {
            using var http = Gateway.CreateHttpClient(alice.ExternalId);
            using var hangUp = new CancellationTokenSource();
            var removal = http.DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}", hangUp.Token);
            // Told before it is applied: the removal has committed.
            Assert.That((await c.NextAsync("member")).Str("change"), Is.EqualTo("left"));
            Assert.That(await IsActiveAsync(conversation, carol.Id), Is.False);
            hangUp.Cancel();
            Assert.That(async () => await removal, Throws.InstanceOf<OperationCanceledException>());
            // The server has seen the hang-up once the removal's request has left its fence, one way or the other.
            await Task.Delay(TimeSpan.FromMilliseconds(500));
        }
        finally
        {
            gate.Release();
        }
        await Eventually.TrueAsync(() => !fences.AnyFenced, "the removal's request has ended");

        await a.SendMessageAsync(conversation, "not for carol");
        var leaked = await c.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() == "message");
        Assert.That(leaked, Is.Empty, "a removed member's socket received a message of the conversation");
    }

    // Re-opening a direct conversation brings back a member who had left it. A message the other person stores right
    // after that commit must reach the returning member's sockets, after their member frame, as after an addition.
    [Test]
    public async Task A_message_stored_just_after_a_direct_conversation_is_reopened_reaches_the_returning_members_sockets_after_joined()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var aliceHttp = Gateway.CreateHttpClient(alice.ExternalId);
        var created = await (await aliceHttp.PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { bob.ExternalId }, isGroup = false }))
            .Content.ReadFromJsonAsync<JsonElement>();
        var conversation = created.Long("conversationId");
        Assert.That((await aliceHttp.DeleteAsync($"/api/conversations/{conversation}/members/{alice.ExternalId}")).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);

        Task<HttpResponseMessage> reopening;
        var gate = MembershipGateOf(alice.Id);
        await gate.WaitAsync();
        try
        {
            reopening = aliceHttp.PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { bob.ExternalId }, isGroup = false });
            await Eventually.TrueAsync(() => IsActiveAsync(conversation, alice.Id), "alice is back in the database");
            // Stored after alice came back; Bob's own ack comes once it is published (or once its publication waits).
            await b.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "right-after", content = "welcome back" });
            await Task.Delay(TimeSpan.FromMilliseconds(300));
        }
        finally
        {
            gate.Release();
        }
        Assert.That((await reopening).StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That((await b.AnswerAsync("right-after")).Type(), Is.EqualTo("ack"));

        var frames = new List<JsonElement>();
        var collected = await a.CollectAsync(TimeSpan.FromSeconds(3), f => f.Type() is "member" or "message");
        frames.AddRange(collected);
        Assert.That(frames.Select(f => f.Type()), Is.EqualTo(new[] { "member", "message" }), "joined, then the message stored after it");
        Assert.That(frames[1].Str("content"), Is.EqualTo("welcome back"));
    }

    // An edit committed after a removal carries the new text of a message: like a message stored after the removal,
    // it must not reach the removed member's sockets while the removal is being applied.
    [Test]
    public async Task An_edit_committed_just_after_a_removal_never_reaches_the_removed_members_sockets()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        var c = await ConnectAsync(carol);
        var messageId = (await a.SendMessageAsync(conversation, "draft")).Long("messageId");
        await c.NextAsync("message");

        await RemoveAsync(conversation, remover: bob, carol, c, meanwhile: () =>
            a.SendAsync(new { type = "edit", conversationId = conversation, messageId, content = "not for carol" }));
        Assert.That((await a.NextAsync("messageEdited")).Str("content"), Is.EqualTo("not for carol"));

        var leaked = await c.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() is "messageEdited" or "message");
        Assert.That(leaked, Is.Empty, "a removed member's socket received an edit committed after the removal");
    }

    // A receipt committed after a removal tells where a member has read to: like a message stored after the
    // removal, it must not reach the removed member's sockets while the removal is being applied.
    [Test]
    public async Task A_read_receipt_committed_just_after_a_removal_never_reaches_the_removed_members_sockets()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var c = await ConnectAsync(carol);
        var messageId = (await b.SendMessageAsync(conversation, "read me")).Long("messageId");
        await a.NextAsync("message");
        await c.NextAsync("message");

        await RemoveAsync(conversation, remover: bob, carol, c, meanwhile: () =>
            a.SendAsync(new { type = "read", conversationId = conversation, messageId }));
        Assert.That((await b.NextAsync("read")).Long("messageId"), Is.EqualTo(messageId));

        var leaked = await c.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() == "read");
        Assert.That(leaked, Is.Empty, "a removed member's socket received a receipt committed after the removal");
    }

    // Typing is not stored, but the rule of messages holds for it too: typing relayed while a removal is being applied
    // is relayed after it, so it never reaches the removed member's sockets.
    [Test]
    public async Task Typing_sent_just_after_a_removal_never_reaches_the_removed_members_sockets()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var c = await ConnectAsync(carol);

        await RemoveAsync(conversation, remover: bob, carol, c, meanwhile: () =>
            a.SendAsync(new { type = "typing", conversationId = conversation }));
        Assert.That((await b.NextAsync("typing")).Long("senderId"), Is.EqualTo(alice.Id), "the members who stay see it");

        var leaked = await c.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() == "typing");
        Assert.That(leaked, Is.Empty, "a removed member's socket received typing relayed after the removal");
    }

    // The removed member's socket stays open while the removal is applied: typing it sends then must not be shown to
    // the others after they were told the member left (and be taken back when the removal is applied).
    [Test]
    public async Task Typing_a_removed_member_sends_while_the_removal_is_applied_is_refused_and_never_shown()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        var c = await ConnectAsync(carol);

        await RemoveAsync(conversation, remover: alice, carol, c, meanwhile: () =>
            c.SendAsync(new { type = "typing", conversationId = conversation }));
        Assert.That((await c.NextAsync("error")).Str("code"), Is.EqualTo("access_denied"));

        var shown = await a.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() == "typing");
        Assert.That(shown, Is.Empty, "the others were shown the typing of a member who had left");
    }

    // Typing that lapses while a removal is being applied: its stop is for the members who stay, after the removal.
    [Test]
    public async Task Typing_that_lapses_while_a_removal_is_applied_is_announced_to_the_members_who_stay_only()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        var a = await ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var c = await ConnectAsync(carol);
        await a.SendAsync(new { type = "typing", conversationId = conversation });
        await b.NextAsync("typing");
        await c.NextAsync("typing");

        // Held past the typing timeout and a sweep: the typing lapses while the removal is applied.
        await RemoveAsync(conversation, remover: bob, carol, c, meanwhile: () => Task.Delay(TimeSpan.FromSeconds(2.5)));
        var lapsed = await b.NextAsync("typing");
        Assert.That((lapsed.Long("senderId"), lapsed.GetProperty("isTyping").GetBoolean()), Is.EqualTo((alice.Id, false)));

        var leaked = await c.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() == "typing");
        Assert.That(leaked, Is.Empty, "a removed member's socket received a lapse announced after the removal");
    }

    // A typist whose connection drops while a removal is being applied: the stop said on their behalf is for the
    // members who stay, after the removal, as a lapse is.
    [Test]
    public async Task Typing_stopped_by_a_close_while_a_removal_is_applied_is_announced_to_the_members_who_stay_only()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, carol);
        await using var a = await Gateway.ConnectAsync(alice);
        var b = await ConnectAsync(bob);
        var c = await ConnectAsync(carol);
        await a.SendAsync(new { type = "typing", conversationId = conversation });
        await b.NextAsync("typing");
        await c.NextAsync("typing");

        await RemoveAsync(conversation, remover: bob, carol, c, meanwhile: async () =>
        {
            a.Abort();
            // Alice's connection has left (her status goes before her typing): its stop is due now.
            await b.NextAsync(f => f.Type() == "presence" && f.Long("senderId") == alice.Id);
        });
        var stopped = await b.NextAsync("typing");
        Assert.That((stopped.Long("senderId"), stopped.GetProperty("isTyping").GetBoolean()), Is.EqualTo((alice.Id, false)));

        var leaked = await c.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() == "typing");
        Assert.That(leaked, Is.Empty, "a removed member's socket received a stop announced after the removal");
    }

    // Sending a message ends its sender's typing, announced once the message is published. A removal that begins in
    // between must not have that stop reach the removed member after their "left", as the message itself would not.
    [Test]
    public async Task Typing_ended_by_a_message_while_a_removal_is_applied_is_announced_to_the_members_who_stay_only()
    {
        PausingPublisher? publisher = null;
        await using var gateway = new TestGateway(services: s => s.AddSingleton<IChatPublisher>(sp =>
            publisher = new PausingPublisher(sp.GetRequiredService<ConnectionRegistry>(), pauseAfter: "last words"))).Start();
        var (alice, bob, carol) = (await gateway.CreateUserAsync(), await gateway.CreateUserAsync(), await gateway.CreateUserAsync());
        var conversation = await gateway.CreateConversationAsync(alice, bob, carol);
        await using var a = await gateway.ConnectAsync(alice);
        await using var b = await gateway.ConnectAsync(bob);
        await using var c = await gateway.ConnectAsync(carol);
        await a.SendAsync(new { type = "typing", conversationId = conversation });
        await b.NextAsync("typing");
        await c.NextAsync("typing");

        await a.SendAsync(new { type = "message", conversationId = conversation, clientMessageId = "last", content = "last words" });
        // The message has reached everyone; its sender's typing has not been ended yet.
        await publisher!.Published.Task.WaitAsync(ChatTestClient.DefaultTimeout);
        using var http = gateway.CreateHttpClient(bob.ExternalId);
        Task<HttpResponseMessage> removal;
        var gate = MembershipGateOf(gateway, carol.Id);
        await gate.WaitAsync();
        try
        {
            removal = http.DeleteAsync($"/api/conversations/{conversation}/members/{carol.ExternalId}");
            Assert.That((await c.NextAsync("member")).Str("change"), Is.EqualTo("left"));
            publisher.Release.SetResult();
            await Task.Delay(TimeSpan.FromMilliseconds(300));
        }
        finally
        {
            gate.Release();
        }
        Assert.That((await removal).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That((await a.AnswerAsync("last")).Type(), Is.EqualTo("ack"));
        var stopped = await b.NextAsync("typing");
        Assert.That((stopped.Long("senderId"), stopped.GetProperty("isTyping").GetBoolean()), Is.EqualTo((alice.Id, false)));

        var leaked = await c.CollectAsync(TimeSpan.FromMilliseconds(500), f => f.Type() == "typing");
        Assert.That(leaked, Is.Empty, "a removed member's socket received a stop announced after the removal");
    }

    /// <summary>
    /// Delivers as the registry does, but holds the message writer inside the publication of the message whose content
    /// is <c>pauseAfter</c>, once every recipient has it, until <see cref="Release"/> is completed.
    /// </summary>
    private sealed class PausingPublisher(ConnectionRegistry registry, string pauseAfter) : IChatPublisher
    {
        public TaskCompletionSource Published { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void PublishToConversation(long conversationId, OutboundFrame frame, ChatConnection? except = null)
        {
            registry.PublishToConversation(conversationId, frame, except);
            if (frame.Seq != 0 && System.Text.Encoding.UTF8.GetString(frame.Payload.Span).Contains(pauseAfter, StringComparison.Ordinal))
            {
                Published.SetResult();
                Release.Task.Wait(ChatTestClient.DefaultTimeout);
            }
        }

        public void PublishToConversation(long conversationId, OutboundFrame frame, ChatConnection from, Func<OutboundFrame> toOwnDevices) =>
            registry.PublishToConversation(conversationId, frame, from, toOwnDevices);

        public void PublishToUsersIn(IEnumerable<long> conversationIds, OutboundFrame frame, long exceptUserId) =>
            registry.PublishToUsersIn(conversationIds, frame, exceptUserId);

        public void PublishToOwnDevices(ChatConnection source, OutboundFrame frame) => registry.PublishToOwnDevices(source, frame);
    }

    // The caller leaves the group they have just created (another request of theirs) before the creation is answered:
    // the creation committed, so it is answered as such, with the group as it was created. A failure would have the
    // client create the group again.
    [Test]
    public async Task A_creation_whose_caller_leaves_before_it_is_answered_is_answered_with_the_conversation_as_created()
    {
        var (alice, bob, carol) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var title = $"left at once {Guid.NewGuid():N}";

        Task<HttpResponseMessage> creation, leaving;
        long conversation = 0;
        var gate = MembershipGateOf(alice.Id);
        await gate.WaitAsync();
        try
        {
            // Held after its commit, while it is applied to the sockets; the leaving commits meanwhile.
            creation = http.PostAsJsonAsync("/api/conversations", new { title, memberExternalIds = new[] { bob.ExternalId, carol.ExternalId } });
            await Eventually.TrueAsync(async () =>
                (conversation = await Sql.ScalarAsync<long>("SELECT COALESCE(max(id), 0) FROM conversations WHERE title = @title", new { title })) != 0,
                "the group is created");
            leaving = http.DeleteAsync($"/api/conversations/{conversation}/members/{alice.ExternalId}");
            await Eventually.TrueAsync(async () => !await IsActiveAsync(conversation, alice.Id), "alice has left in the database");
        }
        finally
        {
            gate.Release();
        }

        Assert.That((await leaving).StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        var response = await creation;
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Created));
        var created = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.That((created.Long("conversationId"), created.Str("title"), created.Long("memberCount")), Is.EqualTo((conversation, title, 3L)));
        Assert.That(created.GetProperty("members").EnumerateArray().Select(m => m.Long("userId")),
            Is.EqualTo(new[] { alice.Id, bob.Id, carol.Id }.Order()), "the members as created, the caller included");
        Assert.That(response.Headers.Location?.ToString(), Is.EqualTo($"/api/conversations/{conversation}"));
    }

    // Clients may ask for a direct conversation each time they show it. While a fence is up the writer holds back
    // every batch holding that conversation, so asking again for one both people are still in must not raise one.
    [Test]
    public async Task Asking_again_for_a_direct_conversation_nobody_left_raises_no_membership_fence()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var conversation = (await (await http.PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { bob.ExternalId } }))
            .Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId");
        var fences = Gateway.Services.GetRequiredService<MembershipFences>();

        Task<HttpResponseMessage> again;
        await using (await Sql.HoldAsync("SELECT 1 FROM conversations WHERE id = @conversation FOR UPDATE", new { conversation }))
        {
            again = http.PostAsJsonAsync("/api/conversations", new { memberExternalIds = new[] { bob.ExternalId } });
            await Eventually.TrueAsync(async () => await Sql.LockWaitersAsync() >= 1, "the request waits for the conversation's row");
            Assert.That(fences.AnyFenced, Is.False, "no fence while the statement waits");
        }

        Assert.That((await again).StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    // A removal enters the conversation's fence, which holds back the publication of its messages: one asked for by
    // someone who is not a member must be answered before that, or anyone could slow any conversation down.
    [Test]
    public async Task A_removal_asked_for_by_a_non_member_is_refused_without_raising_a_fence()
    {
        var (alice, bob, mallory) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        var conversation = await Gateway.CreateConversationAsync(alice, bob, await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(mallory.ExternalId);
        var fences = Gateway.Services.GetRequiredService<MembershipFences>();

        Task<HttpResponseMessage> removal;
        await using (await Sql.HoldAsync("SELECT 1 FROM conversations WHERE id = @conversation FOR UPDATE", new { conversation }))
        {
            removal = http.DeleteAsync($"/api/conversations/{conversation}/members/{mallory.ExternalId}");
            await Task.WhenAny(removal, Task.Delay(TimeSpan.FromSeconds(2)));
            Assert.That(fences.AnyFenced, Is.False, "no fence for a non-member's request");
        }

        Assert.That((await removal).StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }
}
