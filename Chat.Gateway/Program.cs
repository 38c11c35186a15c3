using Chat.Gateway.Api;
using Chat.Gateway.Health;
using Chat.Gateway.Hosting;
using Chat.Gateway.WebSockets;

var builder = WebApplication.CreateBuilder(args);

builder.AddChatGateway();

var app = builder.Build();

app.UseAuthentication();
app.UseAuthorization();
app.MapHealthEndpoints();
app.MapChatApi();
app.MapChatWebSocket("/ws");

app.Run();

/// <summary>The gateway's entry point, visible to the in-process test host.</summary>
public partial class Program;
