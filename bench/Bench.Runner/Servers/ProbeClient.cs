using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Bench.Runner.Servers;

/// <summary>What a server's probe (bench/Bench.Probe) reports.</summary>
public sealed record ProbeStats(
    long GcHeapBytes,
    long GcCommittedBytes,
    long TotalMemoryBytes,
    long AllocatedBytes,
    int Gen0,
    int Gen1,
    int Gen2,
    int ThreadPoolThreads,
    long ThreadPoolQueue,
    long DatabaseCommands);

/// <summary>Asks a server's probe for its managed-memory figures over the Unix socket given at its start.</summary>
internal sealed class ProbeClient(string socketPath)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public string SocketPath { get; } = socketPath;

    /// <summary>Current figures; null when the probe does not answer (the server was started without it).</summary>
    public Task<ProbeStats?> StatsAsync(CancellationToken cancellationToken) => AskAsync("stats", cancellationToken);

    /// <summary>Figures after a full, compacting collection: the heap that is live.</summary>
    public Task<ProbeStats?> CollectAsync(CancellationToken cancellationToken) => AskAsync("gc", cancellationToken);

    private async Task<ProbeStats?> AskAsync(string command, CancellationToken cancellationToken)
    {
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), cancellationToken);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            await stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\n"), cancellationToken);
            using var reader = new StreamReader(stream, Encoding.ASCII);
            var line = await reader.ReadLineAsync(cancellationToken);
            return line is null ? null : JsonSerializer.Deserialize<ProbeStats>(line, Json);
        }
        catch (SocketException)
        {
            return null;
        }
    }
}
