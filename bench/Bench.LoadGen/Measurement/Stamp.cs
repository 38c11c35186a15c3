using System.Buffers.Text;
using System.Globalization;

namespace Bench.LoadGen.Measurement;

/// <summary>
/// What every generated message carries, in its content and in its clientMessageId: the measurement phase it
/// belongs to and the time it was scheduled to be sent (<see cref="System.Diagnostics.Stopwatch"/> ticks of the
/// generator's process). Whoever echoes the message back (an ack, a delivery), its latency is measured from the
/// schedule, so a generator or server that falls behind shows as latency, never as a lower rate.
/// </summary>
public readonly record struct Stamp(int Phase, long ScheduledAt)
{
    /// <summary>Longest text form: "phase.ticks".</summary>
    public const int MaxLength = 11 + 1 + 20;

    /// <summary>Writes "phase.ticks" as ASCII; returns the bytes written.</summary>
    public int Format(Span<byte> destination)
    {
        if (!Utf8Formatter.TryFormat(Phase, destination, out var phaseLength)
            || phaseLength + 1 >= destination.Length)
        {
            throw new ArgumentException("The destination is too small for a stamp.", nameof(destination));
        }
        destination[phaseLength] = (byte)'.';
        if (!Utf8Formatter.TryFormat(ScheduledAt, destination[(phaseLength + 1)..], out var ticksLength))
        {
            throw new ArgumentException("The destination is too small for a stamp.", nameof(destination));
        }
        return phaseLength + 1 + ticksLength;
    }

    public override string ToString() => $"{Phase}.{ScheduledAt}";

    /// <summary>Reads a stamp at the start of <paramref name="text"/>; whatever follows it is ignored.</summary>
    public static bool TryParse(ReadOnlySpan<byte> text, out Stamp stamp)
    {
        stamp = default;
        if (!Utf8Parser.TryParse(text, out int phase, out var phaseLength)
            || phaseLength >= text.Length
            || text[phaseLength] != (byte)'.'
            || !Utf8Parser.TryParse(text[(phaseLength + 1)..], out long scheduledAt, out _))
        {
            return false;
        }
        stamp = new Stamp(phase, scheduledAt);
        return true;
    }

    /// <summary>Reads a stamp at the start of <paramref name="text"/> (content as a string); whatever follows is ignored.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out Stamp stamp)
    {
        stamp = default;
        var dot = text.IndexOf('.');
        if (dot <= 0)
        {
            return false;
        }
        var rest = text[(dot + 1)..];
        var end = rest.IndexOf('.');
        if (!int.TryParse(text[..dot], NumberStyles.None, CultureInfo.InvariantCulture, out var phase)
            || !long.TryParse(end < 0 ? rest : rest[..end], NumberStyles.None, CultureInfo.InvariantCulture, out var scheduledAt))
        {
            return false;
        }
        stamp = new Stamp(phase, scheduledAt);
        return true;
    }

    /// <summary>Reads the stamp after the first '.' of a clientMessageId made by <see cref="ClientMessageId"/>.</summary>
    public static bool TryParseClientMessageId(ReadOnlySpan<byte> clientMessageId, out Stamp stamp)
    {
        var dot = clientMessageId.IndexOf((byte)'.');
        stamp = default;
        return dot >= 0 && TryParse(clientMessageId[(dot + 1)..], out stamp);
    }

    /// <summary>
    /// "runTag.phase.ticks": unique per sender (a sender never has two messages scheduled at the same tick) and
    /// across runs against the same database (the run tag), so the server's idempotency never merges two messages.
    /// </summary>
    public string ClientMessageId(string runTag) => $"{runTag}.{Phase}.{ScheduledAt}";
}
