using Chat.Core.Connections;
using Chat.Core.Protocol;

namespace Chat.Core.Handlers;

/// <summary>Handles one kind of client frame for one connection. Frames of a connection are handled one at a time, in order.</summary>
public interface IFrameHandler<in TFrame> where TFrame : ClientFrame
{
    ValueTask HandleAsync(ChatConnection connection, TFrame frame, CancellationToken cancellationToken);
}
