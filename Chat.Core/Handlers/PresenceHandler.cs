using Chat.Core.Connections;
using Chat.Core.Protocol;

namespace Chat.Core.Handlers;

/// <summary><c>presence</c>: records the connection's status; announces the user's status when it changed.</summary>
public sealed class PresenceHandler(ConnectionRegistry registry, PresenceAnnouncer announcer) : IFrameHandler<PresenceFrame>
{
    public ValueTask HandleAsync(ChatConnection connection, PresenceFrame frame, CancellationToken cancellationToken)
    {
        if (registry.SetPresence(connection, frame.Status) is { } changed)
        {
            announcer.Announce(connection.User, changed);
        }
        return ValueTask.CompletedTask;
    }
}
