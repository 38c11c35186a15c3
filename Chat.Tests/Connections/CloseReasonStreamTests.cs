using System.Net.WebSockets;
using System.Reflection;
using System.Text;
using Chat.Core.Connections;

namespace Chat.Tests.Connections;

public sealed class CloseReasonStreamTests
{
    private static async Task<(byte[] Written, CloseReason? LibraryClose)> WriteAsync(params byte[] frame)
    {
        using var written = new MemoryStream();
        var stream = new CloseReasonStream(written);
        await stream.WriteAsync(frame);
        return (written.ToArray(), stream.LibraryClose);
    }

    private static byte[] CloseFrame(int status, string reason = "")
    {
        var text = Encoding.UTF8.GetBytes(reason);
        return [0x88, (byte)(2 + text.Length), (byte)(status >> 8), (byte)(status & 0xFF), .. text];
    }

    [TestCase(1007, "invalid UTF-8")]
    [TestCase(1002, "WebSocket protocol error")]
    public async Task A_close_the_library_sends_without_a_reason_goes_out_with_the_gateways(int status, string reason)
    {
        var (written, libraryClose) = await WriteAsync(CloseFrame(status));

        Assert.That(written, Is.EqualTo(CloseFrame(status, reason)));
        Assert.That(libraryClose?.Description, Is.EqualTo(reason));
    }

    [Test]
    public async Task Every_other_write_goes_out_as_it_came()
    {
        byte[][] frames =
        [
            CloseFrame(1000),
            CloseFrame(1007, "x"),
            CloseFrame(1008, "slow consumer"),
            [0x81, 0x02, 0x03, 0xEF],
            [0x89, 0x02, 0x03, 0xEF],
            [0x88, 0x02, 0x03],
            [0x88, 0x02, 0x03, 0xEF, 0x00],
        ];

        foreach (var frame in frames)
        {
            var (written, libraryClose) = await WriteAsync(frame);

            Assert.That(written, Is.EqualTo(frame), Convert.ToHexString(frame));
            Assert.That(libraryClose, Is.Null, Convert.ToHexString(frame));
        }
    }

    [Test]
    public void Every_close_reason_fits_in_a_close_frame()
    {
        var reasons = typeof(CloseReason).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.FieldType == typeof(CloseReason))
            .Select(f => (CloseReason)f.GetValue(null)!)
            .ToList();

        Assert.That(reasons, Has.Count.GreaterThan(5));
        // A control frame's payload is at most 125 bytes: the 2-byte status and up to 123 bytes of reason.
        Assert.That(reasons.Select(r => Encoding.UTF8.GetByteCount(r.Description)), Is.All.InRange(1, 123));
        Assert.That(reasons.Select(r => r.Status), Has.None.EqualTo(WebSocketCloseStatus.Empty));
    }
}
