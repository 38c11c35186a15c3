using Chat.Tests.Infrastructure;

namespace Chat.Tests.Hardening;

/// <summary>
/// Text the client chooses never reaches a log line with its control characters: it could forge lines. And a close
/// without one reads as such.
/// </summary>
public sealed class LogInjectionTests : GatewayTest
{
    [Test]
    public async Task A_close_reason_with_line_breaks_is_logged_escaped()
    {
        var user = await Gateway.CreateUserAsync("closer");
        var client = await ConnectAsync(user);

        await client.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "bye\ninfo: forged line\r\u001b[2K");

        string? line = null;
        for (var deadline = DateTime.UtcNow.AddSeconds(5); line is null && DateTime.UtcNow < deadline; await Task.Delay(50))
        {
            line = Gateway.Logs.Lines.FirstOrDefault(l => l.Contains($"of user {user.Id} closed", StringComparison.Ordinal));
        }
        Assert.That(line, Is.Not.Null);
        Assert.That(line, Does.Contain(@"bye\ninfo: forged line\r\u001b[2K"));
        Assert.That(line!.Any(char.IsControl), Is.False, line);
    }

    [Test]
    public async Task A_close_without_a_reason_is_logged_as_such()
    {
        var user = await Gateway.CreateUserAsync("quiet-closer");
        var client = await ConnectAsync(user);

        await client.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "");

        Assert.That(() => Gateway.Logs.Lines.Any(l => l.Contains($"of user {user.Id} closed (NormalClosure, no reason given)", StringComparison.Ordinal)),
            Is.True.After(5000, 50), string.Join("\n", Gateway.Logs.Lines.Where(l => l.Contains($"of user {user.Id}", StringComparison.Ordinal))));
    }
}
