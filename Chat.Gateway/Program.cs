using Chat.Gateway.Api;
using Chat.Gateway.Health;
using Chat.Gateway.Hosting;
using Chat.Gateway.Metrics;
using Chat.Gateway.WebSockets;

var builder = WebApplication.CreateBuilder(args);

builder.AddChatGateway();

var app = builder.Build();

// The socket authenticates its own handshake (HandshakeAuthenticator), ahead of the authentication middleware:
// what that middleware keeps would stay alive as long as the socket.
app.MapChatWebSocket("/ws");
app.UseAuthentication();
app.UseAuthorization();
app.MapHealthEndpoints();
app.MapMetricsEndpoint();
app.MapChatApi();

app.Run();

/// <summary>The gateway's entry point, visible to the in-process test host.</summary>
public partial class Program;
