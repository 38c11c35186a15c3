using Bench.LoadGen.Measurement;

namespace Bench.LoadGen.Targets;

/// <summary>The content of a generated message: its stamp, then padding up to a fixed length.</summary>
public static class Payload
{
    /// <summary>Content length that makes a client <c>message</c> frame about 200 bytes, as in the measurements.</summary>
    public const int DefaultContentLength = 112;

    /// <summary>Writes the content's UTF-8 bytes ("phase.ticks." then 'x's) and returns how many were written.</summary>
    public static int Write(Stamp stamp, int contentLength, Span<byte> destination)
    {
        var length = stamp.Format(destination);
        destination[length++] = (byte)'.';
        var total = Math.Max(length, contentLength);
        destination[length..total].Fill((byte)'x');
        return total;
    }

    public static string Text(Stamp stamp, int contentLength)
    {
        Span<byte> bytes = stackalloc byte[Math.Max(contentLength, Stamp.MaxLength + 1)];
        return System.Text.Encoding.ASCII.GetString(bytes[..Write(stamp, contentLength, bytes)]);
    }
}
