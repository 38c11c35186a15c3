using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Bench.Runner.Machine;

namespace Bench.Runner.Servers;

/// <summary>
/// A server under test, started from its build output as a process of its own, in the Production environment,
/// logging warnings and errors to a file, with the benchmark's probe loaded. Stopped with SIGTERM.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(20);

    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly Lock _logLock = new();

    private ServerProcess(ServerDefinition definition, Process process, StreamWriter log, Uri address, ProbeClient probe)
    {
        Definition = definition;
        _process = process;
        _log = log;
        Address = address;
        Probe = probe;
    }

    public ServerDefinition Definition { get; }

    public int Pid => _process.Id;

    public Uri Address { get; }

    public ProbeClient Probe { get; }

    public bool HasExited => _process.HasExited;

    public static async Task<ServerProcess> StartAsync(ServerDefinition definition, string probeAssembly, string logPath, CancellationToken cancellationToken)
    {
        if (!File.Exists(definition.Assembly))
        {
            throw new InvalidOperationException($"{definition.Assembly} does not exist: build the solution in Release first (bench/run does).");
        }
        var port = FreePort();
        var address = new Uri($"http://127.0.0.1:{port}");
        var probeSocket = Path.Combine(Path.GetTempPath(), $"bench-probe-{definition.Name}-{Environment.ProcessId}.sock");
        var start = new ProcessStartInfo(DotnetHost())
        {
            // From the output directory, so the content root holds appsettings.json and schema.sql, as in the image.
            WorkingDirectory = Path.GetDirectoryName(definition.Assembly)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(definition.Assembly);
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add(address.ToString().TrimEnd('/'));
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        start.Environment["DOTNET_STARTUP_HOOKS"] = probeAssembly;
        start.Environment["BENCH_PROBE_SOCKET"] = probeSocket;
        foreach (var (key, value) in definition.Environment)
        {
            if (value is null)
            {
                start.Environment.Remove(key);
            }
            else
            {
                start.Environment[key] = value;
            }
        }

        Directory.CreateDirectory(Path.GetDirectoryName(logPath)!);
        var log = new StreamWriter(logPath, append: false) { AutoFlush = true };
        var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {definition.Assembly}.");
        var server = new ServerProcess(definition, process, log, address, new ProbeClient(probeSocket));
        process.OutputDataReceived += (_, e) => server.Log(e.Data);
        process.ErrorDataReceived += (_, e) => server.Log(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await server.WaitHealthyAsync(cancellationToken);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    private async Task WaitHealthyAsync(CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{Definition.Name} exited with status {_process.ExitCode} while starting; see its log.");
            }
            try
            {
                using var response = await http.GetAsync(Definition.HealthPath, cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK && await Probe.StatsAsync(cancellationToken) is not null)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // Not listening yet.
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{Definition.Name} was not healthy (with its probe answering) within {StartTimeout.TotalSeconds} s; see its log.");
            }
            await Task.Delay(250, cancellationToken);
        }
    }

    private void Log(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_logLock)
        {
            _log.WriteLine(line);
        }
    }

    /// <summary>SIGTERM, then SIGKILL if it has not stopped in time. Returns the exit status.</summary>
    public async Task<int> StopAsync()
    {
        if (!_process.HasExited)
        {
            if (!Signals.Terminate(_process.Id))
            {
                _process.Kill(entireProcessTree: true);
            }
            using var timeout = new CancellationTokenSource(StopTimeout);
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                Log($"bench: {Definition.Name} did not stop within {StopTimeout.TotalSeconds} s of SIGTERM; killed");
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process.Dispose();
        lock (_logLock)
        {
            _log.Dispose();
        }
        File.Delete(Probe.SocketPath);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The dotnet host running this process, so that the servers run on the same runtime; else the one on PATH.</summary>
    private static string DotnetHost() =>
        Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";
}
