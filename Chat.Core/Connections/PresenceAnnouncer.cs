using Chat.Core.Protocol;

namespace Chat.Core.Connections;

/// <summary>
/// Sends a user's status to every live connection of every user who shares an active conversation with them,
/// once per connection however many conversations they share (the frame is serialized once).
/// </summary>
public sealed class PresenceAnnouncer(ConnectionRegistry registry, IChatPublisher publisher, TimeProvider time)
{
    /// <param name="conversations">The user's conversations; by default those their live connections receive.</param>
    public void Announce(ConnectedUser user, PresenceStatus status, IEnumerable<long>? conversations = null)
    {
        var recipients = registry.UsersIn(conversations ?? registry.ConversationsOf(user.UserId), exceptUserId: user.UserId);
        if (recipients.Count == 0)
        {
            return;
        }
        publisher.PublishToUsers(recipients, FrameWriter.Presence(user.UserId, user.DisplayName, status, time.GetUtcNow().UtcDateTime));
    }
}
