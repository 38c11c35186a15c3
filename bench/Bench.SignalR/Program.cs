using Bench.SignalR.Hubs;
using Npgsql;

// The chat as a C# team would build it without the gateway: a SignalR hub with a group per conversation and one
// Dapper transaction per message before the ack, on the gateway's schema. See bench/README.md.
var builder = WebApplication.CreateBuilder(args);

var connectionString = builder.Configuration.GetConnectionString("Chat")
    ?? throw new InvalidOperationException("ConnectionStrings:Chat is not set (environment variable ConnectionStrings__Chat).");
builder.Services.AddSingleton(_ => NpgsqlDataSource.Create(connectionString));
builder.Services.AddSingleton<ChatStore>();
builder.Services.AddSignalR();

var app = builder.Build();

app.MapGet("/health", () => Results.Ok());
app.MapHub<ChatHub>("/hub");

app.Run();
