using Chat.Core.Connections;
using Chat.Core.Protocol;

namespace Chat.Core.Handlers;

/// <summary><c>presence</c>: records the connection's status; the user's status is announced when it changed.</summary>
public sealed class PresenceHandler(PresenceAnnouncer announcer) : IFrameHandler<PresenceFrame>
{
    public ValueTask HandleAsync(ChatConnection connection, PresenceFrame frame, CancellationToken cancellationToken)
    {
        announcer.SetPresence(connection, frame.Status);
        return ValueTask.CompletedTask;
    }
}
