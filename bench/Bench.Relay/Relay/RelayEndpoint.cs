using System.Buffers;
using System.Globalization;
using System.Net.WebSockets;

namespace Bench.Relay.Relay;

/// <summary>
/// One relay socket: who it is comes from the query (<c>?user=1&amp;name=Ann&amp;conversations=3,4</c>), then
/// <c>welcome</c> and <c>ready</c>, then a receive loop that relays every <c>message</c> frame to the other
/// members of its conversation and acks it. Like the gateway it reads with a zero-byte receive first, so an idle
/// socket holds no buffer, and it writes through one bounded queue per socket.
/// </summary>
internal sealed class RelayEndpoint(RelayRooms rooms)
{
    private const int MaxFrameBytes = 65536;
    private const int QueueCapacity = 1024;

    public async Task RunAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest
            || !long.TryParse(context.Request.Query["user"], NumberStyles.None, CultureInfo.InvariantCulture, out var userId))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return;
        }
        var name = context.Request.Query["name"].ToString() is { Length: > 0 } given ? given : $"user {userId}";
        var conversations = context.Request.Query["conversations"].ToString()
            .Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(id => long.Parse(id, NumberStyles.None, CultureInfo.InvariantCulture))
            .ToArray();

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var connection = new RelayConnection(socket, userId, name, QueueCapacity);
        var sending = connection.RunSendLoopAsync();
        connection.Send(RelayFrames.Welcome(userId, name));
        rooms.Join(connection, conversations);
        try
        {
            connection.Send(RelayFrames.Ready(conversations.Select(rooms.LastSeq)));
            await ReceiveLoopAsync(connection, socket);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away.
        }
        finally
        {
            rooms.Leave(connection, conversations);
            connection.Complete();
            try
            {
                await sending.WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception e) when (e is WebSocketException or TimeoutException or ObjectDisposedException)
            {
                socket.Abort();
            }
        }
    }

    private async Task ReceiveLoopAsync(RelayConnection connection, WebSocket socket)
    {
        while (true)
        {
            var header = await socket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);
            if (header.MessageType == WebSocketMessageType.Close)
            {
                return;
            }
            var buffer = ArrayPool<byte>.Shared.Rent(4096);
            try
            {
                var length = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (length == buffer.Length)
                    {
                        if (length >= MaxFrameBytes)
                        {
                            connection.Close(WebSocketCloseStatus.MessageTooBig, "frame too large");
                            return;
                        }
                        var larger = ArrayPool<byte>.Shared.Rent(length * 2);
                        buffer.AsSpan(0, length).CopyTo(larger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = larger;
                    }
                    result = await socket.ReceiveAsync(buffer.AsMemory(length), CancellationToken.None);
                    length += result.Count;
                } while (!result.EndOfMessage);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }
                Relay(connection, buffer.AsSpan(0, length));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private void Relay(RelayConnection connection, ReadOnlySpan<byte> frame)
    {
        if (!ClientMessage.TryRead(frame, out var message))
        {
            // Typing, read receipts, presence, or something the relay does not understand: nothing to relay.
            return;
        }
        if (rooms.Publish(connection, message) is { } ack)
        {
            connection.Send(ack);
        }
        else
        {
            connection.Send(RelayFrames.Error("access_denied", $"Not a member of conversation {message.ConversationId}.", message.ClientMessageId));
        }
    }
}
