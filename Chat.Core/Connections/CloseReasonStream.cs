using System.Text;

namespace Chat.Core.Connections;

/// <summary>
/// An upgraded connection's stream, passed through untouched but for the close frames the WebSocket library sends
/// on its own. The library checks what it receives before the gateway sees it, and closes on a violation with a
/// status and an empty reason: 1007 for a text message that is not UTF-8, 1002 for a frame that breaks RFC 6455.
/// Such a close is given the gateway's reason, as every close the gateway decides has, and is remembered so that
/// the session counts and logs it as a close of the gateway's.
/// </summary>
/// <remarks>
/// The library writes each frame in one write, and the gateway's own closes always carry a reason, so a write of
/// exactly a close frame holding a status alone is the library's. Were the library to split a frame over two
/// writes, none would match and the close would go out as the library made it.
/// </remarks>
public sealed class CloseReasonStream(Stream inner) : Stream
{
    // FIN with the close opcode, then an unmasked payload length of 2: a server's close frame with no reason.
    private const byte FinClose = 0x88;
    private const byte StatusOnly = 2;

    private static readonly CloseReason[] LibraryCloses = [CloseReason.InvalidUtf8, CloseReason.ProtocolError];

    // Built once: the same frame, with the reason after the status.
    private static readonly byte[][] ReasonedFrames = [.. LibraryCloses.Select(Frame)];

    /// <summary>The close the library sent for a violation it found itself, once it has sent one.</summary>
    public CloseReason? LibraryClose { get; private set; }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.WriteAsync(WithReason(buffer), cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(WithReason(buffer.AsMemory(offset, count)).Span);

    private ReadOnlyMemory<byte> WithReason(ReadOnlyMemory<byte> buffer)
    {
        var span = buffer.Span;
        if (span.Length != 2 + StatusOnly || span[0] != FinClose || span[1] != StatusOnly)
        {
            return buffer;
        }
        var status = span[2] << 8 | span[3];
        for (var i = 0; i < LibraryCloses.Length; i++)
        {
            if ((int)LibraryCloses[i].Status == status)
            {
                LibraryClose = LibraryCloses[i];
                return ReasonedFrames[i];
            }
        }
        return buffer;
    }

    private static byte[] Frame(CloseReason reason)
    {
        var status = (int)reason.Status;
        byte[] text = Encoding.UTF8.GetBytes(reason.Description);
        return [FinClose, (byte)(StatusOnly + text.Length), (byte)(status >> 8), (byte)(status & 0xFF), .. text];
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    public override bool CanRead => inner.CanRead;

    public override bool CanWrite => inner.CanWrite;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
        base.Dispose(disposing);
    }
}
