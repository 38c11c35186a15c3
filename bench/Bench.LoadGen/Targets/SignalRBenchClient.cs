using Bench.LoadGen.Measurement;
using Microsoft.AspNetCore.SignalR.Client;

namespace Bench.LoadGen.Targets;

/// <summary>
/// One SignalR user. Sends are hub invocations that are not awaited one after another (the generator is
/// open-loop); each invocation's completion is the ack. The client library serializes writes to the socket.
/// </summary>
internal sealed class SignalRBenchClient : IBenchClient
{
    private readonly HubConnection _connection;
    private readonly LoadEvents _events;
    private readonly int _contentLength;
    private readonly string _runTag = LoadRunTag.Value;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SeqTracker _order = new();
    private volatile bool _closing;

    public SignalRBenchClient(HubConnection connection, LoadEvents events, int contentLength)
    {
        _connection = connection;
        _events = events;
        _contentLength = contentLength;
        // The client library calls handlers of one connection one at a time, so the tracker needs no lock.
        connection.On<HubMessage>(HubNames.Message, OnMessage);
        connection.On(HubNames.Ready, () => _ready.TrySetResult());
        connection.Closed += OnClosed;
    }

    public async Task WaitReadyAsync(CancellationToken cancellationToken) => await _ready.Task.WaitAsync(cancellationToken);

    public bool TrySend(in OutgoingMessage message)
    {
        var stamp = message.Stamp;
        _events.Sending(stamp);
        var request = new HubSendMessage(message.ConversationId, stamp.ClientMessageId(_runTag), Payload.Text(stamp, _contentLength));
        // Observed by the continuation, which turns the outcome into an ack or a failure of the message's phase.
        _connection.InvokeAsync<HubAck>(HubNames.SendMessage, request).ContinueWith(
            static (invocation, state) =>
            {
                var (events, stamp) = ((LoadEvents, Stamp))state!;
                if (invocation.IsCompletedSuccessfully)
                {
                    events.Acked(stamp, invocation.Result.ConversationId);
                }
                else
                {
                    events.Failed(stamp, invocation.Exception?.GetBaseException().Message ?? "invocation canceled");
                }
            },
            (_events, stamp),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        return true;
    }

    private void OnMessage(HubMessage message)
    {
        if (Stamp.TryParse(message.Content.AsSpan(), out var stamp))
        {
            _events.Delivered(stamp, _order.Observe(message.ConversationId, message.Seq));
        }
    }

    private Task OnClosed(Exception? error)
    {
        if (!_closing)
        {
            _events.ConnectionLost($"a SignalR connection closed: {error?.Message ?? "by the server"}");
        }
        _ready.TrySetException(new InvalidOperationException("The connection closed before the server sent ready."));
        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        _closing = true;
        await _connection.DisposeAsync();
    }
}
