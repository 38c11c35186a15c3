// write-rate: how many messages a running gateway stores per second for N concurrent senders, and how many
// database transactions (round trips of the write path) each message costs.
//
//   dotnet run -c Release --project tools/write-rate -- --url ws://127.0.0.1:8080/ws \
//       --db "Host=127.0.0.1;Port=54329;Username=postgres;Database=chat" [--senders 32] [--conversations 1] [--warmup 3] [--seconds 10]
//       [--gateway-pid PID]
//
// Each sender is a WebSocket client in a closed loop: send a message, wait for its ack, send the next. The
// senders are spread round-robin over the conversations and receive each other's messages: with --conversations
// equal to --senders each sender is alone in its conversation and nothing is fanned out, which isolates the write
// path; with 1 they all share one conversation, the most contended case for its row. Round trips are counted on the database side, as the growth of
// pg_stat_database.xact_commit for the gateway's database while the senders run (each store is one implicit
// transaction), so the figure means the same for any version of the gateway. The gateway must run in the
// Development environment (the tool signs tokens with the development key), with the per-connection message
// rate limit raised above what a closed-loop sender reaches (`./run --Chat:Limits:MessageRatePerSecond=1000
// --Chat:Limits:MessageBurst=1000`, as the benchmark does), and must be idle otherwise.
// On Linux, with the database on the same machine, it also reports the CPU time per message of the database's
// backends serving the gateway and, given --gateway-pid, of the gateway: figures that a busy machine distorts less
// than the rate.
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using Chat.Core.Auth;
using Chat.Core.Options;
using Dapper;
using Npgsql;

const string Usage = """
    Usage: write-rate --url ws://host:port/ws [--db <connection string>] [--senders 32] [--conversations 1]
                      [--warmup 3] [--seconds 10] [--gateway-pid PID]
    --db defaults to ConnectionStrings__Chat. See the comment at the top of tools/write-rate/Program.cs.
    """;
if (args.Any(a => a is "-h" or "--help"))
{
    Console.WriteLine(Usage);
    return 0;
}
Options options;
try
{
    options = Options.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException or UriFormatException)
{
    Console.Error.WriteLine($"write-rate: {e.Message}");
    Console.Error.WriteLine(Usage);
    return 2;
}
await using var dataSource = NpgsqlDataSource.Create(options.Database);

var run = Guid.NewGuid().ToString("N")[..8];
var userIds = new List<long>();
for (var i = 0; i < options.Senders; i++)
{
    await using var connection = await dataSource.OpenConnectionAsync();
    userIds.Add(await connection.ExecuteScalarAsync<long>(
        "INSERT INTO user_profiles (external_id, display_name) VALUES (@id, @id) RETURNING id", new { id = $"rate-{run}-{i}" }));
}
var conversationIds = new List<long>();
for (var c = 0; c < options.Conversations; c++)
{
    var members = userIds.Where((_, i) => i % options.Conversations == c).ToArray();
    await using var connection = await dataSource.OpenConnectionAsync();
    conversationIds.Add(await connection.ExecuteScalarAsync<long>("""
        WITH c AS (INSERT INTO conversations (title, is_group) VALUES ('write-rate', true) RETURNING id),
             p AS (INSERT INTO conversation_participants (conversation_id, user_id) SELECT c.id, m FROM c, unnest(@members) AS m)
        SELECT id FROM c
        """, new { members }));
}

var auth = new ChatAuthOptions { SigningKey = ChatAuthOptions.DevelopmentSigningKey };
var sockets = new List<ClientWebSocket>();
for (var i = 0; i < options.Senders; i++)
{
    var socket = new ClientWebSocket();
    socket.Options.SetRequestHeader("Authorization", "Bearer " + ChatTokens.Issue(auth, $"rate-{run}-{i}", null, null, TimeSpan.FromHours(1)));
    await socket.ConnectAsync(options.Url, CancellationToken.None);
    var buffer = new byte[64 * 1024];
    while (!Encoding.UTF8.GetString(buffer, 0, (await socket.ReceiveAsync(buffer, CancellationToken.None)).Count).Contains("\"type\":\"ready\""))
    {
    }
    sockets.Add(socket);
}

// A warm-up (JIT, pools, caches) runs first; the rate and the CPU times are those of the measured window after
// it. Transactions are counted over the whole run, since the database reports them only about once a second.
var commitsBefore = await CommitsAsync();
var warmup = TimeSpan.FromSeconds(options.Warmup);
var deadline = warmup + TimeSpan.FromSeconds(options.Seconds);
var stop = Stopwatch.StartNew();
var window = Task.Run(async () =>
{
    await Task.Delay(warmup);
    var start = (Cpu: await CpuSecondsAsync(), At: stop.Elapsed);
    await Task.Delay(deadline - stop.Elapsed);
    return (Start: start, End: (Cpu: await CpuSecondsAsync(), At: stop.Elapsed));
});
var acked = await Task.WhenAll(sockets.Select((socket, i) => Task.Run(async () =>
{
    var conversationId = conversationIds[i % options.Conversations];
    var buffer = new byte[64 * 1024];
    var (count, measured) = (0, 0);
    while (stop.Elapsed < deadline)
    {
        var frame = Encoding.UTF8.GetBytes(
            $$"""{"type":"message","conversationId":{{conversationId}},"clientMessageId":"{{i}}-{{count}}","content":"message {{count}} from sender {{i}}, about two hundred bytes long once the frame around it is counted"}""");
        await socket.SendAsync(frame, WebSocketMessageType.Text, true, CancellationToken.None);
        // Other members' messages and presence arrive in between; the ack is the only answer to wait for.
        while (true)
        {
            var reply = await socket.ReceiveAsync(buffer, CancellationToken.None);
            var text = Encoding.UTF8.GetString(buffer, 0, reply.Count);
            if (text.StartsWith("{\"type\":\"ack\"", StringComparison.Ordinal))
            {
                break;
            }
            if (text.StartsWith("{\"type\":\"error\"", StringComparison.Ordinal))
            {
                // The default limit (10 frames a second per connection) is a closed-loop sender's first wall.
                var hint = text.Contains("\"rate_limited\"", StringComparison.Ordinal)
                    ? " (start the gateway with --Chat:Limits:MessageRatePerSecond=1000 --Chat:Limits:MessageBurst=1000)"
                    : "";
                throw new InvalidOperationException($"sender {i}: {text}{hint}");
            }
        }
        count++;
        if (stop.Elapsed >= warmup && stop.Elapsed < deadline)
        {
            measured++;
        }
    }
    return (Total: count, Measured: measured);
})));
var (windowStart, windowEnd) = await window;
var elapsed = windowEnd.At - windowStart.At;
var messages = acked.Sum(a => a.Measured);
var total = acked.Sum(a => a.Total);

// Backends report their counters when idle, at most once a second.
await Task.Delay(TimeSpan.FromSeconds(2));
var commits = await CommitsAsync() - commitsBefore - 1;
long stored;
await using (var connection = await dataSource.OpenConnectionAsync())
{
    stored = await connection.ExecuteScalarAsync<long>("SELECT count(*) FROM messages WHERE conversation_id = ANY(@conversationIds)", new { conversationIds });
}
foreach (var socket in sockets)
{
    await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
}

Console.WriteLine($"senders {options.Senders}, conversations {options.Conversations}, {options.Warmup} s warm-up, {elapsed.TotalSeconds:F1} s measured");
Console.WriteLine($"acked {messages} in the window: {messages / elapsed.TotalSeconds:F0} messages/s");
Console.WriteLine($"whole run: acked {total}, stored rows {stored}, transactions {commits}: {(double)commits / total:F3} per message");
if (windowEnd.Cpu.Database > 0)
{
    Console.WriteLine($"CPU per message: database {(windowEnd.Cpu.Database - windowStart.Cpu.Database) / messages * 1e6:F0} µs" +
                      (options.GatewayPid is null ? "" : $", gateway {(windowEnd.Cpu.Gateway - windowStart.Cpu.Gateway) / messages * 1e6:F0} µs"));
}
return total == stored ? 0 : 1;

async Task<long> CommitsAsync()
{
    await using var connection = await dataSource.OpenConnectionAsync();
    return await connection.ExecuteScalarAsync<long>("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()");
}

// CPU seconds used so far by the database backends of this database (other than this tool's) and by the gateway.
async Task<(double Database, double Gateway)> CpuSecondsAsync()
{
    if (!OperatingSystem.IsLinux())
    {
        return (0, 0);
    }
    await using var connection = await dataSource.OpenConnectionAsync();
    var backends = await connection.QueryAsync<int>(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
    return (backends.Sum(ProcessCpuSeconds), options.GatewayPid is { } pid ? ProcessCpuSeconds(pid) : 0);
}

// utime and stime, fields 14 and 15 of /proc/PID/stat, in clock ticks of 1/100 s; 0 for a process that is gone.
static double ProcessCpuSeconds(int pid)
{
    try
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0;
    }
    catch (IOException)
    {
        return 0;
    }
}

internal sealed record Options(Uri Url, string Database, int Senders, int Conversations, int Warmup, int Seconds, int? GatewayPid)
{
    public static Options Parse(string[] args)
    {
        string? Value(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        var url = Value("--url") ?? throw new ArgumentException("--url ws://host:port/ws is required");
        var database = Value("--db") ?? Environment.GetEnvironmentVariable("ConnectionStrings__Chat")
            ?? throw new ArgumentException("--db (or ConnectionStrings__Chat) is required");
        var senders = int.Parse(Value("--senders") ?? "32");
        var conversations = int.Parse(Value("--conversations") ?? "1");
        if (conversations < 1 || conversations > senders)
        {
            throw new ArgumentException("--conversations must be between 1 and --senders");
        }
        var gatewayPid = Value("--gateway-pid") is { } pid ? int.Parse(pid) : (int?)null;
        return new Options(new Uri(url), database, senders, conversations, int.Parse(Value("--warmup") ?? "3"), int.Parse(Value("--seconds") ?? "10"), gatewayPid);
    }
}
