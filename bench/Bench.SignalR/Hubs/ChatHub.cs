using System.Globalization;
using Microsoft.AspNetCore.SignalR;

namespace Bench.SignalR.Hubs;

/// <summary>
/// One group per conversation. <c>SendMessage</c> stores the message in one transaction, sends it to the other
/// members of the group and returns the ack: the textbook shape of a SignalR chat.
/// </summary>
public sealed class ChatHub(ChatStore store) : Hub
{
    private const string UserKey = "user";

    public override async Task OnConnectedAsync()
    {
        var query = Context.GetHttpContext()?.Request.Query["user"].ToString();
        if (!long.TryParse(query, NumberStyles.None, CultureInfo.InvariantCulture, out var userId)
            || await store.FindMemberAsync(userId, Context.ConnectionAborted) is not { } member)
        {
            throw new HubException("Unknown user.");
        }
        Context.Items[UserKey] = member;
        foreach (var conversationId in member.ConversationIds)
        {
            await Groups.AddToGroupAsync(Context.ConnectionId, Group(conversationId), Context.ConnectionAborted);
        }
        // Tells the client it is in its groups: from now on it misses nothing.
        await Clients.Caller.SendAsync("ready", Context.ConnectionAborted);
    }

    public async Task<MessageAck> SendMessage(SendMessageRequest request)
    {
        var member = (HubMember)Context.Items[UserKey]!;
        var stored = await store.StoreAsync(member.UserId, request, Context.ConnectionAborted)
            ?? throw new HubException($"Not a member of conversation {request.ConversationId}.");
        await Clients.OthersInGroup(Group(request.ConversationId)).SendAsync("message", new MessageEvent(
            request.ConversationId, stored.MessageId, stored.Seq, member.UserId, member.DisplayName,
            request.Content, request.ClientMessageId, stored.CreatedAt));
        return new MessageAck(request.ClientMessageId, stored.MessageId, request.ConversationId, stored.Seq, stored.CreatedAt);
    }

    private static string Group(long conversationId) => conversationId.ToString(CultureInfo.InvariantCulture);
}
