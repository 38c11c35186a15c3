using Chat.Gateway.Api;
using Chat.Gateway.Health;
using Chat.Gateway.Hosting;
using Chat.Gateway.Metrics;
using Chat.Gateway.WebSockets;

// Read before the host is disposed, which a failed start does before the exception reaches the catch below.
var stopping = CancellationToken.None;
try
{
    var builder = WebApplication.CreateBuilder(args);

    builder.AddChatGateway();

    var app = builder.Build().ValidateOptions().WarnOfUnknownSettings();
    stopping = app.Lifetime.ApplicationStopping;

    // Listening comes before the schema is applied: nothing but health is served until the start is over.
    app.UseStartGate();
    // The socket authenticates its own handshake (HandshakeAuthenticator), ahead of the authentication middleware:
    // what that middleware keeps would stay alive as long as the socket.
    app.MapChatWebSocket("/ws");
    // A fault no endpoint expected (a bug, a statement the database refused) is logged and answered 500 as a
    // problem, without its details, in every environment. After the socket: its handshake answers for itself.
    app.UseExceptionHandler();
    app.UseProblemsForUnroutedRequests();
    app.UseAuthentication();
    app.UseAuthorization();
    app.MapHealthEndpoints();
    app.MapMetricsEndpoint();
    app.MapChatApi();

    app.Run();
    return 0;
}
catch (OperationCanceledException) when (stopping.IsCancellationRequested)
{
    // Stopped (SIGTERM, Ctrl-C) while still starting, for instance while waiting for PostgreSQL: asked for, not a crash.
    Console.Error.WriteLine("The gateway was stopped before it finished starting.");
    return 0;
}
catch (Exception e) when (StartupFailure.Explain(e) is { } reason)
{
    // Settings are read while the app is built and started: a bad one is the operator's to fix, not a crash.
    Console.Error.WriteLine($"The gateway cannot start: {reason}");
    return 1;
}

/// <summary>The gateway's entry point, visible to the in-process test host.</summary>
public partial class Program;
