using System.Net;
using System.Net.Sockets;

namespace Chat.Tests.Infrastructure;

/// <summary>
/// A loopback TCP relay between the gateway and PostgreSQL, so a test can take the database away from one
/// gateway (cut every connection and refuse new ones) and give it back, without stopping the shared server.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly string _targetHost;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _open = [];
    private readonly List<Task> _relays = [];
    private readonly Task _accepting;
    private volatile bool _down;

    public TcpProxy(string targetHost, int targetPort)
    {
        _targetHost = targetHost;
        _targetPort = targetPort;
        _listener.Start();
        _accepting = AcceptLoopAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Drops every relayed connection and refuses new ones, as a stopped server would.</summary>
    public void Cut()
    {
        _down = true;
        lock (_open)
        {
            foreach (var client in _open)
            {
                Reset(client);
            }
            _open.Clear();
        }
    }

    public void Restore() => _down = false;

    // An RST rather than a FIN: the peer sees a broken connection, as when a server dies.
    private static void Reset(TcpClient client)
    {
        try
        {
            if (client.Client is { } socket)
            {
                socket.LingerState = new LingerOption(true, 0);
            }
        }
        catch (Exception e) when (e is ObjectDisposedException or SocketException)
        {
            // Already gone.
        }
        client.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient inbound;
            try
            {
                inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            if (_down)
            {
                Reset(inbound);
                continue;
            }
            var outbound = new TcpClient();
            try
            {
                await outbound.ConnectAsync(_targetHost, _targetPort);
            }
            catch (SocketException)
            {
                inbound.Dispose();
                outbound.Dispose();
                continue;
            }
            lock (_open)
            {
                _open.Add(inbound);
                _open.Add(outbound);
            }
            lock (_relays)
            {
                _relays.Add(RelayAsync(inbound, outbound));
            }
        }
    }

    private static async Task RelayAsync(TcpClient a, TcpClient b)
    {
        var one = a.GetStream().CopyToAsync(b.GetStream());
        var other = b.GetStream().CopyToAsync(a.GetStream());
        try
        {
            await Task.WhenAny(one, other);
        }
        finally
        {
            a.Dispose();
            b.Dispose();
        }
        try
        {
            await Task.WhenAll(one, other);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // A cut connection.
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        Cut();
        await _accepting;
        Task[] relays;
        lock (_relays)
        {
            relays = [.. _relays];
        }
        await Task.WhenAll(relays);
        _stop.Dispose();
    }
}
