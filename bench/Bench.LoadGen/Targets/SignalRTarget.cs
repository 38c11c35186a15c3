using Bench.LoadGen.Measurement;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;

namespace Bench.LoadGen.Targets;

/// <summary>
/// The SignalR reference server, driven with the official client over WebSockets (no negotiate round trip).
/// The user is named in the query string, as the reference server reads it.
/// </summary>
public sealed class SignalRTarget(Uri hubAddress) : IChatTarget
{
    public string Name => "signalr";

    public int ContentLength { get; init; } = Payload.DefaultContentLength;

    public async Task<IBenchClient> ConnectAsync(BenchUser user, long conversationId, LoadEvents events, CancellationToken cancellationToken)
    {
        var address = new UriBuilder(hubAddress) { Query = $"user={user.Id}" }.Uri;
        var connection = new HubConnectionBuilder()
            .WithUrl(address, HttpTransportType.WebSockets, options => options.SkipNegotiation = true)
            .Build();
        var client = new SignalRBenchClient(connection, events, ContentLength);
        try
        {
            await connection.StartAsync(cancellationToken);
            await client.WaitReadyAsync(cancellationToken);
            return client;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }
}
