using Bench.Relay.Relay;

// The fan-out ceiling of this box: the gateway's frames over Kestrel WebSockets, with nothing behind them
// (no database, no validation beyond what routing needs). See bench/README.md.
var builder = WebApplication.CreateBuilder(args);

builder.Services.AddRelay();

var app = builder.Build();

app.MapGet("/health", () => Results.Ok());
app.MapRelay("/ws");

app.Run();
