namespace Chat.Tests.Infrastructure;

/// <summary>Base for tests that talk to one in-process gateway shared by the fixture's tests.</summary>
public abstract class GatewayTest
{
    private readonly List<IAsyncDisposable> _clients = [];

    protected TestGateway Gateway { get; private set; } = null!;

    /// <summary>Settings for this fixture's gateway (configuration keys with ':').</summary>
    protected virtual Dictionary<string, string?> Settings => [];

    [OneTimeSetUp]
    public void StartGateway() => Gateway = new TestGateway(Settings).Start();

    [OneTimeTearDown]
    public async Task StopGateway() => await Gateway.DisposeAsync();

    [TearDown]
    public async Task CloseClients()
    {
        foreach (var client in _clients)
        {
            await client.DisposeAsync();
        }
        _clients.Clear();
    }

    /// <summary>Connects and remembers the client so it is closed after the test.</summary>
    protected async Task<ChatTestClient> ConnectAsync(TestUser user, bool catchup = true)
    {
        var client = await Gateway.ConnectAsync(user, catchup);
        _clients.Add(client);
        return client;
    }

    protected T Track<T>(T client) where T : IAsyncDisposable
    {
        _clients.Add(client);
        return client;
    }
}
