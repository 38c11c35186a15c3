using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

// The runtime looks for a type named StartupHook outside any namespace.
#pragma warning disable CA1050

/// <summary>
/// Lets the benchmark read a server's managed memory and database command count without any change to the
/// server: the benchmark starts each server with <c>DOTNET_STARTUP_HOOKS</c> pointing here and
/// <c>BENCH_PROBE_SOCKET</c> naming a Unix socket. A connection that sends <c>stats</c> gets one JSON line back;
/// <c>gc</c> first runs a full blocking, compacting collection, so the heap size is what is live. Nothing runs
/// between requests except a listener counting Npgsql commands.
/// </summary>
internal static class StartupHook
{
    private static long s_databaseCommands;

    public static void Initialize()
    {
        if (Environment.GetEnvironmentVariable("BENCH_PROBE_SOCKET") is not { Length: > 0 } path)
        {
            return;
        }
        CountDatabaseCommands();
        File.Delete(path);
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(4);
        // A background thread, so that it never keeps the server alive, and off the thread pool under test.
        new Thread(() => Serve(listener)) { IsBackground = true, Name = "bench-probe" }.Start();
    }

    private static void CountDatabaseCommands()
    {
        // Npgsql 10 records one db.client.operation.duration measurement per command it executes.
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "Npgsql" && instrument.Name == "db.client.operation.duration")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<double>((_, _, _, _) => Interlocked.Increment(ref s_databaseCommands));
        listener.Start();
    }

    private static void Serve(Socket listener)
    {
        while (true)
        {
            using var client = listener.Accept();
            try
            {
                using var stream = new NetworkStream(client);
                using var reader = new StreamReader(stream, Encoding.ASCII);
                using var writer = new StreamWriter(stream, Encoding.ASCII) { AutoFlush = true };
                while (reader.ReadLine() is { } command)
                {
                    if (command == "gc")
                    {
                        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
                        GC.WaitForPendingFinalizers();
                        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
                    }
                    writer.WriteLine(Stats());
                }
            }
            catch (IOException)
            {
                // The benchmark went away; wait for the next one.
            }
        }
    }

    private static string Stats()
    {
        var info = GC.GetGCMemoryInfo();
        return string.Create(CultureInfo.InvariantCulture,
            $$"""{"gcHeapBytes":{{info.HeapSizeBytes}},"gcCommittedBytes":{{info.TotalCommittedBytes}},"totalMemoryBytes":{{GC.GetTotalMemory(false)}},"allocatedBytes":{{GC.GetTotalAllocatedBytes(false)}},"gen0":{{GC.CollectionCount(0)}},"gen1":{{GC.CollectionCount(1)}},"gen2":{{GC.CollectionCount(2)}},"threadPoolThreads":{{ThreadPool.ThreadCount}},"threadPoolQueue":{{ThreadPool.PendingWorkItemCount}},"databaseCommands":{{Interlocked.Read(ref s_databaseCommands)}}}""");
    }
}
