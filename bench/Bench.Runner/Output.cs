namespace Bench.Runner;

/// <summary>
/// What the benchmark tells the person running it: lines, and a status line that is rewritten in place on a
/// terminal (and printed as lines when the output goes to a file or a pipe). Everything also goes to a log.
/// </summary>
internal sealed class Output(TextWriter console, StreamWriter log) : IDisposable
{
    private readonly bool _interactive = !Console.IsOutputRedirected;
    private readonly Lock _lock = new();
    private int _statusLength;

    public void Line(string text)
    {
        lock (_lock)
        {
            ClearStatus();
            console.WriteLine(text);
            log.WriteLine($"{DateTime.UtcNow:HH:mm:ss} {text}");
            log.Flush();
        }
    }

    /// <summary>Progress: overwritten by the next status or line on a terminal.</summary>
    public void Status(string text)
    {
        lock (_lock)
        {
            if (_interactive)
            {
                ClearStatus();
                console.Write(text);
                console.Flush();
                _statusLength = text.Length;
            }
            else
            {
                console.WriteLine(text);
            }
            log.WriteLine($"{DateTime.UtcNow:HH:mm:ss} {text}");
        }
    }

    private void ClearStatus()
    {
        if (_statusLength > 0)
        {
            console.Write('\r' + new string(' ', _statusLength) + '\r');
            _statusLength = 0;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            ClearStatus();
            log.Dispose();
        }
    }
}

/// <summary>Reports a running count now and then (connections opened).</summary>
internal sealed class CountProgress(Output output, string label, int total) : IProgress<int>
{
    private readonly int _every = Math.Max(1, total / 10);

    public void Report(int value)
    {
        if (value % _every == 0 || value == total)
        {
            output.Status($"{label}: {value:N0}/{total:N0} connected");
        }
    }
}
