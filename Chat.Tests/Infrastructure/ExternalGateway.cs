using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Chat.Tests.Infrastructure;

/// <summary>
/// The built gateway (<c>Chat.Gateway.dll</c>, of the same build configuration as the tests) in a process of its
/// own, so that a test can send it a real SIGTERM or SIGKILL. It listens on a loopback port chosen up front, which
/// a restart reuses.
/// </summary>
public sealed class ExternalGateway : IAsyncDisposable
{
    private readonly Dictionary<string, string> _settings;
    private readonly ConcurrentQueue<string> _output = new();
    private Process? _process;

    public ExternalGateway(Dictionary<string, string> settings)
    {
        // As in TestGateway: the senders of these tests go faster than a person types, so rate limits are off
        // unless the caller sets them.
        _settings = new Dictionary<string, string>
        {
            ["Chat:Limits:MessageRatePerSecond"] = "100000",
            ["Chat:Limits:MessageBurst"] = "1000000",
        };
        foreach (var (key, value) in settings)
        {
            _settings[key] = value;
        }
        Port = FreePort();
    }

    public int Port { get; }

    public Uri HttpAddress => new($"http://127.0.0.1:{Port}");

    public Uri WebSocketAddress => new($"ws://127.0.0.1:{Port}/ws");

    /// <summary>What the process wrote, for failure messages.</summary>
    public string Output => string.Join('\n', _output.TakeLast(60));

    public bool HasExited => _process?.HasExited ?? true;

    public int ExitCode => _process!.ExitCode;

    public static string AssemblyPath
    {
        get
        {
            // The tests run from Chat.Tests/bin/<Configuration>/<tfm>/; the gateway was built beside it.
            var tfm = new DirectoryInfo(AppContext.BaseDirectory).Name;
            var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
            return Path.Combine(TestDatabase.RepositoryRoot, "Chat.Gateway", "bin", configuration, tfm, "Chat.Gateway.dll");
        }
    }

    /// <summary>Starts the process and waits until <c>/health/ready</c> answers 200.</summary>
    public async Task StartAsync()
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(AssemblyPath)!,
        };
        start.ArgumentList.Add(AssemblyPath);
        start.ArgumentList.Add($"--urls=http://127.0.0.1:{Port}");
        foreach (var (key, value) in _settings)
        {
            start.ArgumentList.Add($"--{key}={value}");
        }
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
        start.Environment["ConnectionStrings__Chat"] = TestDatabase.ConnectionString;
        _process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        _process.OutputDataReceived += (_, e) => Keep(e.Data);
        _process.ErrorDataReceived += (_, e) => Keep(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var http = new HttpClient { BaseAddress = HttpAddress, Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline && !_process.HasExited)
        {
            try
            {
                if ((await http.GetAsync("/health/ready")).StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }
            await Task.Delay(100);
        }
        Assert.Fail($"The gateway at {AssemblyPath} did not become ready:\n{Output}");
    }

    /// <summary>SIGTERM, what an orchestrator sends to stop a container.</summary>
    public void Terminate() => Signal("TERM");

    /// <summary>SIGKILL: the process dies on the spot, mid-write or not.</summary>
    public void Kill() => _process!.Kill();

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var limit = new CancellationTokenSource(timeout);
        try
        {
            await _process!.WaitForExitAsync(limit.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
    }

    private void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, _process!.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    private void Keep(string? line)
    {
        if (line is not null)
        {
            _output.Enqueue(line);
        }
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
