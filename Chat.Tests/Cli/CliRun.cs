using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using Chat.Cli;
using Chat.Core.Options;

namespace Chat.Tests.Cli;

/// <summary>Runs the <c>chat</c> command in-process with captured output, as a shell would run it.</summary>
internal static class CliRun
{
    public static Task<CliResult> RunAsync(params string[] args) => RunAsync(null, args);

    public static async Task<CliResult> RunAsync(Dictionary<string, string>? environment, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await CliApp.RunAsync(args, output, error, name => environment?.GetValueOrDefault(name));
        return new CliResult(exit, output.ToString().Trim(), error.ToString().Trim());
    }

    /// <summary>The key the in-process gateway accepts (it runs in Development).</summary>
    public const string Key = ChatAuthOptions.DevelopmentSigningKey;

    /// <summary>A loopback URL where nothing listens: the port was just free.</summary>
    public static string DeadUrl()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return $"http://127.0.0.1:{port}";
    }
}

internal sealed record CliResult(int Exit, string Output, string Error)
{
    public override string ToString() => $"exit {Exit}{Environment.NewLine}stdout:{Environment.NewLine}{Output}{Environment.NewLine}stderr:{Environment.NewLine}{Error}";
}

/// <summary>A keyboard for <c>chat connect</c>: lines typed by the test, read by the command.</summary>
internal sealed class TypedInput : TextReader
{
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();

    public void Type(string line) => _lines.Writer.TryWrite(line);

    /// <summary>Ctrl-D: the end of the input.</summary>
    public void End() => _lines.Writer.TryComplete();

    public override async ValueTask<string?> ReadLineAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _lines.Reader.ReadAsync(cancellationToken);
        }
        catch (ChannelClosedException)
        {
            return null;
        }
    }

    public override string ReadLine() => throw new NotSupportedException("chat connect reads with ReadLineAsync.");
}

/// <summary>A screen for <c>chat connect</c>: keeps what was written and lets the test wait for text to appear, in order.</summary>
internal sealed class Screen : TextWriter
{
    private readonly StringBuilder _text = new();
    private int _seen;

    public override Encoding Encoding => Encoding.UTF8;

    public override void Write(char value)
    {
        lock (_text)
        {
            _text.Append(value);
        }
    }

    public override void Write(string? value)
    {
        lock (_text)
        {
            _text.Append(value);
        }
    }

    public override string ToString()
    {
        lock (_text)
        {
            return _text.ToString();
        }
    }

    /// <summary>Waits until <paramref name="expected"/> appears after what the previous waits found, and returns its line.</summary>
    public async Task<string> WaitForAsync(string expected, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            var text = ToString();
            var at = text.IndexOf(expected, _seen, StringComparison.Ordinal);
            if (at >= 0)
            {
                var start = text.LastIndexOf('\n', at) + 1;
                var end = text.IndexOf('\n', at);
                _seen = at + expected.Length;
                return text[start..(end < 0 ? text.Length : end)].TrimEnd('\r');
            }
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"'{expected}' did not appear on the screen after what was already seen. The screen:{Environment.NewLine}{text}");
            }
            await Task.Delay(20);
        }
    }
}
