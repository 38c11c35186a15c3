// write-rate: how many messages a running gateway stores per second for N concurrent senders, and how many
// database transactions (round trips of the write path) each message costs.
//
//   dotnet run -c Release --project tools/write-rate -- --url ws://127.0.0.1:8080/ws \
//       --db "Host=127.0.0.1;Port=54329;Username=postgres;Database=chat" [--senders 32] [--conversations 1] [--seconds 10]
//
// Each sender is a WebSocket client in a closed loop: send a message, wait for its ack, send the next. The
// senders are spread round-robin over the conversations and receive each other's messages: with --conversations
// equal to --senders each sender is alone in its conversation and nothing is fanned out, which isolates the write
// path; with 1 they all share one conversation, the most contended case for its row. Round trips are counted on the database side, as the growth of
// pg_stat_database.xact_commit for the gateway's database while the senders run (each store is one implicit
// transaction), so the figure means the same for any version of the gateway. The gateway must run in the
// Development environment (the tool signs tokens with the development key) and must be idle otherwise.
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using Chat.Core.Auth;
using Chat.Core.Options;
using Dapper;
using Npgsql;

var options = Options.Parse(args);
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

var commitsBefore = await CommitsAsync();
var stop = Stopwatch.StartNew();
var deadline = TimeSpan.FromSeconds(options.Seconds);
var acked = await Task.WhenAll(sockets.Select((socket, i) => Task.Run(async () =>
{
    var conversationId = conversationIds[i % options.Conversations];
    var buffer = new byte[64 * 1024];
    var count = 0;
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
                throw new InvalidOperationException($"sender {i}: {text}");
            }
        }
        count++;
    }
    return count;
})));
var elapsed = stop.Elapsed;
var messages = acked.Sum();

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

Console.WriteLine($"senders {options.Senders}, conversations {options.Conversations}, {elapsed.TotalSeconds:F1} s");
Console.WriteLine($"acked {messages} (stored rows {stored}): {messages / elapsed.TotalSeconds:F0} messages/s");
Console.WriteLine($"transactions {commits}: {(double)commits / messages:F3} per message");
return messages == stored ? 0 : 1;

async Task<long> CommitsAsync()
{
    await using var connection = await dataSource.OpenConnectionAsync();
    return await connection.ExecuteScalarAsync<long>("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()");
}

internal sealed record Options(Uri Url, string Database, int Senders, int Conversations, int Seconds)
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
        return new Options(new Uri(url), database, senders, conversations, int.Parse(Value("--seconds") ?? "10"));
    }
}
