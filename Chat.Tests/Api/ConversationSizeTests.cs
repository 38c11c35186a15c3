using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Api;

/// <summary><c>Chat:Limits:MaxConversationMembers</c>, set to 4 here.</summary>
public sealed class ConversationSizeTests : GatewayTest
{
    protected override Dictionary<string, string?> Settings => new() { ["Chat:Limits:MaxConversationMembers"] = "4" };

    [Test]
    public async Task Creating_a_conversation_larger_than_the_limit_answers_400_naming_the_members()
    {
        var alice = await Gateway.CreateUserAsync();
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        string[] others = [.. Enumerable.Range(0, 4).Select(i => $"member-{i}-{Guid.NewGuid():N}")];

        var tooMany = await http.PostAsJsonAsync("/api/conversations", new { isGroup = true, memberExternalIds = others });
        var enough = await http.PostAsJsonAsync("/api/conversations", new { isGroup = true, memberExternalIds = others[..3] });

        Assert.That(tooMany.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That((await tooMany.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").TryGetProperty("memberExternalIds", out _), Is.True);
        Assert.That(enough.StatusCode, Is.EqualTo(HttpStatusCode.Created));
    }

    [Test]
    public async Task Concurrent_adds_fill_a_group_to_the_limit_and_no_further()
    {
        var (alice, bob) = (await Gateway.CreateUserAsync(), await Gateway.CreateUserAsync());
        using var http = Gateway.CreateHttpClient(alice.ExternalId);
        var created = await http.PostAsJsonAsync("/api/conversations", new { isGroup = true, memberExternalIds = new[] { bob.ExternalId } });
        var conversation = (await created.Content.ReadFromJsonAsync<JsonElement>()).Long("conversationId");

        var adds = await Task.WhenAll(Enumerable.Range(0, 5).Select(i =>
            http.PostAsJsonAsync($"/api/conversations/{conversation}/members", new { externalId = $"joiner-{i}-{Guid.NewGuid():N}" })));

        Assert.That(adds.Count(r => r.StatusCode == HttpStatusCode.Created), Is.EqualTo(2));
        Assert.That(adds.Count(r => r.StatusCode == HttpStatusCode.Conflict), Is.EqualTo(3));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM conversation_participants WHERE conversation_id = @conversation AND is_active", new { conversation }),
            Is.EqualTo(4));
    }
}
