using System.Net;
using System.Net.Sockets;

namespace Chat.Tests.Infrastructure;

/// <summary>
/// A loopback TCP relay between the gateway and PostgreSQL (or between a client and the gateway), so a test can
/// take the database away from one gateway (cut every connection and refuse new ones) and give it back, without
/// stopping the shared server; make a peer vanish without a FIN (black hole); or let requests through while
/// the replies are lost.
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
    private volatile bool _swallowRequests;
    private volatile bool _swallowReplies;
    private volatile bool _swallowRepliesFromCommit;

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

    /// <summary>Ends a cut, a black hole or lost replies: connections are accepted and bytes relayed again.</summary>
    public void Restore()
    {
        _swallowRequests = false;
        _swallowReplies = false;
        _swallowRepliesFromCommit = false;
        _down = false;
    }

    /// <summary>
    /// Keeps every connection open but relays nothing either way, as a peer that vanished without a FIN (a phone
    /// that lost its network, a crashed NAT): the other side's bytes are accepted and never answered.
    /// </summary>
    public void BlackHole()
    {
        _swallowRequests = true;
        _swallowReplies = true;
    }

    /// <summary>Relays towards the target but drops what comes back: the target acts on a request whose answer is lost.</summary>
    public void SwallowReplies() => _swallowReplies = true;

    /// <summary>
    /// Relays both ways until a PostgreSQL client sends <c>COMMIT</c> as a query of its own, as Npgsql ends an
    /// explicit transaction, then drops every reply, as <see cref="SwallowReplies"/>: a transaction committed by a
    /// round trip of its own, after its statements were answered, takes effect and its COMMIT's answer is lost.
    /// </summary>
    public void SwallowRepliesFromCommit() => _swallowRepliesFromCommit = true;

    // The whole Query message: 'Q', its length (4 + 7) and the text with its terminating zero. Only the text would
    // also match the BEGIN that opens the transaction ("... ISOLATION LEVEL READ COMMITTED").
    private static readonly byte[] Commit = [(byte)'Q', 0, 0, 0, 11, .. "COMMIT\0"u8];

    // Called with each request before it is relayed, so that no reply to it can pass before the switch.
    private void Requested(ArraySegment<byte> request)
    {
        if (_swallowRepliesFromCommit && request.AsSpan().IndexOf(Commit) >= 0)
        {
            _swallowReplies = true;
            _swallowRepliesFromCommit = false;
        }
    }

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
                _relays.Add(RelayAsync(inbound, outbound, this));
            }
        }
    }

    private static async Task RelayAsync(TcpClient a, TcpClient b, TcpProxy proxy)
    {
        var one = PumpAsync(a.GetStream(), b.GetStream(), () => proxy._swallowRequests, proxy.Requested);
        var other = PumpAsync(b.GetStream(), a.GetStream(), () => proxy._swallowReplies);
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

    private static async Task PumpAsync(NetworkStream from, NetworkStream to, Func<bool> swallow, Action<ArraySegment<byte>>? seen = null)
    {
        var buffer = new byte[16 * 1024];
        while (true)
        {
            var read = await from.ReadAsync(buffer);
            if (read == 0)
            {
                return;
            }
            seen?.Invoke(new ArraySegment<byte>(buffer, 0, read));
            if (!swallow())
            {
                await to.WriteAsync(buffer.AsMemory(0, read));
            }
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
