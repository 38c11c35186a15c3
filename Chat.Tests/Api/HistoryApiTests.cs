using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Api;

public sealed class HistoryApiTests : GatewayTest
{
    private TestUser _alice = null!;
    private long _conversation;

    [OneTimeSetUp]
    public async Task TenMessages()
    {
        _alice = await Gateway.CreateUserAsync();
        _conversation = await Gateway.CreateConversationAsync(_alice, await Gateway.CreateUserAsync());
        await using var a = await Gateway.ConnectAsync(_alice);
        for (var i = 1; i <= 10; i++)
        {
            await a.SendMessageAsync(_conversation, $"m{i}", clientMessageId: $"k{i}");
        }
    }

    [TestCase("", new long[] { 6, 7, 8, 9, 10 }, true)]
    [TestCase("beforeSeq=6", new long[] { 1, 2, 3, 4, 5 }, false)]
    [TestCase("beforeSeq=4", new long[] { 1, 2, 3 }, false)]
    [TestCase("afterSeq=0", new long[] { 1, 2, 3, 4, 5 }, true)]
    [TestCase("afterSeq=7", new long[] { 8, 9, 10 }, false)]
    [TestCase("afterSeq=2&beforeSeq=5", new long[] { 3, 4 }, false)]
    [TestCase("afterSeq=10", new long[0], false)]
    [TestCase("afterSeq=99", new long[0], false)]
    [TestCase("afterSeq=9223372036854775807", new long[0], false)]
    [TestCase("beforeSeq=1", new long[0], false)]
    [TestCase("beforeSeq=99", new long[] { 6, 7, 8, 9, 10 }, true)]
    [TestCase("beforeSeq=9223372036854775807", new long[] { 6, 7, 8, 9, 10 }, true)]
    // Both bounds: forward from afterSeq, and hasMore counts only what lies before beforeSeq.
    [TestCase("afterSeq=0&beforeSeq=11", new long[] { 1, 2, 3, 4, 5 }, true)]
    [TestCase("afterSeq=3&beforeSeq=10", new long[] { 4, 5, 6, 7, 8 }, true)]
    [TestCase("afterSeq=3&beforeSeq=9", new long[] { 4, 5, 6, 7, 8 }, false)]
    [TestCase("beforeSeq=9&afterSeq=3", new long[] { 4, 5, 6, 7, 8 }, false)]
    [TestCase("afterSeq=5&beforeSeq=7", new long[] { 6 }, false)]
    [TestCase("afterSeq=5&beforeSeq=6", new long[0], false)]
    [TestCase("afterSeq=8&beforeSeq=3", new long[0], false)]
    [TestCase("afterSeq=&beforeSeq=", new long[] { 6, 7, 8, 9, 10 }, true)]
    public async Task History_pages_in_seq_order_in_either_direction(string query, long[] seqs, bool hasMore)
    {
        using var http = Gateway.CreateHttpClient(_alice.ExternalId);

        var page = await http.GetFromJsonAsync<JsonElement>($"/api/conversations/{_conversation}/messages?limit=5&{query}");

        Assert.That(page.GetProperty("items").EnumerateArray().Select(m => m.Long("seq")), Is.EqualTo(seqs));
        Assert.That(page.GetProperty("hasMore").GetBoolean(), Is.EqualTo(hasMore));
    }

    [Test]
    public async Task A_history_message_carries_the_fields_of_the_message_frame()
    {
        using var http = Gateway.CreateHttpClient(_alice.ExternalId);

        var page = await http.GetFromJsonAsync<JsonElement>($"/api/conversations/{_conversation}/messages?afterSeq=0&limit=1");

        var m = page.GetProperty("items")[0];
        Assert.That((m.Long("conversationId"), m.Long("seq"), m.Long("senderId"), m.Str("content"), m.Str("clientMessageId"), m.Str("messageType")),
            Is.EqualTo((_conversation, 1L, _alice.Id, "m1", "k1", "text")));
        Assert.That(m.Str("timestamp"), Does.Match(@"\.\d{3}Z$"));
        Assert.That((m.GetProperty("isEdited").GetBoolean(), m.GetProperty("isDeleted").GetBoolean()), Is.EqualTo((false, false)));
        Assert.That(m.GetProperty("changeSeq").ValueKind, Is.EqualTo(JsonValueKind.Null), "never changed");
        Assert.That((page.Long("lastSeq"), page.Long("lastChangeSeq")), Is.EqualTo((10L, 0L)));
    }

    [Test]
    public async Task A_member_added_later_reads_what_was_said_before_they_joined()
    {
        var newcomer = await Gateway.CreateUserAsync();
        using var http = Gateway.CreateHttpClient(_alice.ExternalId);
        using var newcomerHttp = Gateway.CreateHttpClient(newcomer.ExternalId);
        var group = await Gateway.CreateConversationAsync(_alice, await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        await using (var a = await Gateway.ConnectAsync(_alice))
        {
            await a.SendMessageAsync(group, "before you came");
        }

        Assert.That((await http.PostAsJsonAsync($"/api/conversations/{group}/members", new { externalId = newcomer.ExternalId })).StatusCode, Is.EqualTo(HttpStatusCode.Created));
        var page = await newcomerHttp.GetFromJsonAsync<JsonElement>($"/api/conversations/{group}/messages");

        Assert.That(page.GetProperty("items").EnumerateArray().Select(m => m.Str("content")), Is.EqualTo(new[] { "before you came" }));
    }

    [TestCase("limit=5&limit=50", "limit")]
    [TestCase("afterSeq=9&AfterSeq=9", "afterSeq")]
    public async Task A_query_parameter_given_twice_answers_400_saying_so(string query, string field)
    {
        using var http = Gateway.CreateHttpClient(_alice.ExternalId);

        using var response = await http.GetAsync($"/api/conversations/{_conversation}/messages?{query}");

        var problem = await response.ProblemAsync(HttpStatusCode.BadRequest);
        Assert.That(problem.Errors(field), Is.EqualTo(new[] { $"{field} is given more than once." }));
    }

    [TestCase("limit=0", "limit")]
    [TestCase("limit=101", "limit")]
    [TestCase("afterSeq=-1", "afterSeq")]
    [TestCase("beforeSeq=0", "beforeSeq")]
    [TestCase("beforeSeq=x", "beforeSeq")]
    [TestCase("afterSeq=abc", "afterSeq")]
    [TestCase("afterSeq=1.5", "afterSeq")]
    [TestCase("afterSeq=1e3", "afterSeq")]
    [TestCase("afterSeq=%201", "afterSeq")]
    [TestCase("afterSeq=0x10", "afterSeq")]
    [TestCase("afterSeq=9223372036854775808", "afterSeq")]
    [TestCase("beforeSeq=-3", "beforeSeq")]
    [TestCase("beforeSeq=99999999999999999999", "beforeSeq")]
    [TestCase("afterSeq=2&beforeSeq=x", "beforeSeq")]
    [TestCase("afterSeq=x&beforeSeq=5", "afterSeq")]
    public async Task Bad_history_parameters_answer_400_naming_them(string query, string field)
    {
        using var http = Gateway.CreateHttpClient(_alice.ExternalId);

        var response = await http.GetAsync($"/api/conversations/{_conversation}/messages?{query}");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.That(problem.GetProperty("errors").TryGetProperty(field, out _), Is.True);
        Assert.That(problem.Str("detail"), Does.Contain(field), "the detail names the parameter too");
    }
}
