using Chat.Core.Connections;
using Chat.Core.Protocol;

namespace Chat.Core.Handlers;

/// <summary>Routes a parsed frame to its handler. Unknown types never get here: the reader answers them with <c>unknown_type</c>.</summary>
public sealed class FrameDispatcher(
    MessageHandler messages,
    TypingHandler typing,
    ReadHandler reads,
    PresenceHandler presence,
    SyncHandler sync,
    EditHandler edit,
    DeleteHandler delete)
{
    public ValueTask DispatchAsync(ChatConnection connection, ClientFrame frame, CancellationToken cancellationToken) => frame switch
    {
        SendMessageFrame f => messages.HandleAsync(connection, f, cancellationToken),
        TypingFrame f => typing.HandleAsync(connection, f, cancellationToken),
        ReadFrame f => reads.HandleAsync(connection, f, cancellationToken),
        PresenceFrame f => presence.HandleAsync(connection, f, cancellationToken),
        SyncFrame f => sync.HandleAsync(connection, f, cancellationToken),
        EditFrame f => edit.HandleAsync(connection, f, cancellationToken),
        DeleteFrame f => delete.HandleAsync(connection, f, cancellationToken),
        _ => throw new ArgumentOutOfRangeException(nameof(frame), frame.GetType().Name, "No handler for this frame."),
    };
}
