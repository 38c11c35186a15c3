using System.Diagnostics;
using System.Threading.Channels;
using Chat.Core.Connections;
using Chat.Core.Conversations;
using Chat.Core.Metrics;
using Chat.Core.Options;
using Chat.Core.Protocol;
using Chat.Data;
using Chat.Data.Messages;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Chat.Core.Messages;

/// <summary>
/// The gateway's one writer of messages: handlers queue what they receive, and a single loop stores it in batches
/// (group commit), then publishes each stored message and completes its sender's wait.
/// </summary>
/// <remarks>
/// <para><b>Group commit.</b> The loop takes everything queued, up to <c>Chat:Writer:MaxBatchSize</c>, and stores it
/// in one round trip and one implicit transaction (locks on its conversations and senders, then one statement for
/// every message; see MessageRepository): one commit (one WAL flush) for the whole batch. It never waits for a
/// batch to fill: a message that arrives at an idle writer goes to the database at once, alone, so latency at low
/// rates is one round trip. Under load, what arrives while a batch is in the database forms the next batch, so
/// batches grow with the arrival rate times the round-trip time, and the round trips per message fall below one
/// without any timer.</para>
/// <para><b>Order.</b> There is one loop, batches are stored one after the other, and within a batch each
/// conversation's messages get consecutive seqs in queue order. Publishing follows the batch directly, so a
/// conversation's messages are published in seq order without a lock or a reorder buffer: the loop is the only
/// publisher of messages. The next batch is already on its way to the database while the previous one is being
/// published; it is published only after that. An ack is sent only after COMMIT, and nothing uncommitted is
/// published.</para>
/// <para><b>Guarantees per item.</b> The statement treats the items as if stored one by one in queue order: a key
/// the sender already used, or used earlier in the same batch, is a duplicate that gets the original's ack and is
/// not published again; a non-member or a bad reply is refused on its own while the others are stored; each other
/// active participant's unread count grows by the number of messages they did not send; the conversation's
/// preview is its last message of the batch.</para>
/// <para><b>Faults and retries.</b> A transient fault is retried by running the whole statement again, even when
/// the COMMIT of the failed attempt is unknown (the connection broke after the statement was sent). Rerunning
/// blindly would be wrong in one way only: items that did commit come back as duplicates, and a duplicate is
/// normally not published, so the other members would never see them live. The writer therefore tracks the
/// highest message id it has published (<c>publishedUpTo</c>), starting from the highest id in the table, read
/// before its first batch, and publishes a duplicate whose original is above it. That is exact and keeps seq
/// order: every message this process published has an id at or below the mark, and so has every message stored
/// before it started, so one above it was never published here (even when the very first batch is the one cut
/// off); and ids are drawn under the conversation's row lock in seq order, so any published message of the same
/// conversation with a higher seq would have a higher id, which would have raised the mark above the original's. Storage itself is idempotent by the key: the rerun writes no second row,
/// takes no seq and bumps no unread count for items that had committed. When the retries run out, every item of
/// the batch fails with the retryable <c>error internal</c> and no ack; a resend with the same key later gets the
/// original's ack (and, by the same rule, its first publication if it still keeps the order; otherwise the members
/// see a seq gap, which the protocol tells them catch-up fills).</para>
/// <para><b>Other writers.</b> Another gateway process that commits the same key, or removes a replied-to message,
/// between the statement's snapshot and its insert makes the statement fail on a constraint; the repository runs
/// it again with a fresh snapshot instead of failing the batch. Conversation rows are locked in id order, so two
/// gateways' batches queue rather than deadlock. A duplicate whose original another gateway stored after this
/// one's mark is published here too; that is right while each gateway publishes only to its own sockets, and a
/// publisher shared between gateways would have to tell such originals apart.</para>
/// <para><b>Shutdown.</b> Stopping completes the queue and waits for the loop to store, publish and answer what is
/// queued. The server stops before this service (it was registered later), so the sessions have finished the
/// frames in hand by then; if the host's shutdown timeout runs out first, the database work is cancelled and the
/// remaining items fail.</para>
/// </remarks>
public sealed partial class MessageWriter : IHostedService, IDisposable
{
    /// <summary>Stands for "the starting mark is not read yet": a duplicate is then never taken for an unpublished one.</summary>
    internal const long MarkUnknown = long.MaxValue;

    private readonly MessageRepository _repository;
    private readonly IChatPublisher _publisher;
    private readonly MembershipFences _fences;
    private readonly ILogger<MessageWriter> _logger;
    private readonly ChatMetrics _metrics;
    private readonly int _maxBatchSize;
    private readonly Channel<Pending> _queue;
    private readonly CancellationTokenSource _abort = new();
    private Task _loop = Task.CompletedTask;
    private long _publishedUpTo = MarkUnknown;
    private long _batches;
    private long _messages;

    public MessageWriter(
        MessageRepository repository, IChatPublisher publisher, MembershipFences fences, IOptions<ChatWriterOptions> options, ChatMetrics metrics, ILogger<MessageWriter> logger)
    {
        _repository = repository;
        _publisher = publisher;
        _fences = fences;
        _logger = logger;
        _metrics = metrics;
        _maxBatchSize = options.Value.MaxBatchSize;
        _queue = Channel.CreateBounded<Pending>(new BoundedChannelOptions(options.Value.QueueCapacity)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
        metrics.AddGauge("chat.writer.queue", "Messages waiting for the next batch.", () => Queued);
    }

    /// <summary>Batches sent to the database since start: one round trip each, unless a fault made it retry.</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Messages in those batches, whatever their outcome.</summary>
    public long Messages => Interlocked.Read(ref _messages);

    /// <summary>Messages waiting for a batch (not counting the batch in the database).</summary>
    public int Queued => _queue.Reader.Count;

    /// <summary>
    /// Queues a message and waits until its batch has committed (and it has been published when it was stored).
    /// Throws when the database stayed unavailable through the retries: the client may resend with the same key.
    /// Throws <see cref="InvalidOperationException"/> when the writer has stopped: the message was not queued.
    /// </summary>
    /// <param name="cancellationToken">Stops the wait (the sender's socket is gone); a queued message is still stored.</param>
    public async Task<StoreResult> StoreAsync(NewMessage message, ChatConnection sender, CancellationToken cancellationToken)
    {
        var pending = new Pending(new Submission(message, sender.User, sender));
        try
        {
            await _queue.Writer.WriteAsync(pending, cancellationToken);
        }
        catch (ChannelClosedException e)
        {
            // The writer has stopped (shutdown) or died: nothing was queued. Not a ChannelClosedException, which the
            // session takes for its own socket closing and answers with nothing: the sender must hear "internal".
            throw new InvalidOperationException("The message writer is not running; the message was not stored.", e);
        }
        try
        {
            return await pending.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The sender's socket is gone and nobody waits for the message any more, but it is still stored, or
            // fails, with its batch: a failure must be observed here, or the finalizer reports it as unobserved.
            _ = pending.Task.ContinueWith(
                (task, state) => ((MessageWriter)state!).Abandoned(task.Exception!.InnerException!, sender),
                this, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            throw;
        }
    }

    /// <summary>
    /// A message whose sender stopped waiting failed. A failed batch, or a dead loop, the writer has logged already;
    /// a refused value its sender's session would have logged, as it answers the frame, so it is logged here.
    /// </summary>
    private void Abandoned(Exception failure, ChatConnection sender)
    {
        if (failure is MessageRefusedException refused)
        {
            AbandonedMessageRefused(_logger, refused, sender.Id, sender.UserId);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _loop = RunAsync();
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        await using (cancellationToken.Register(_abort.Cancel))
        {
            await _loop;
        }
        WriterStopped(_logger, Messages, Batches);
    }

    public void Dispose() => _abort.Dispose();

    private async Task RunAsync()
    {
        var reader = _queue.Reader;
        Batch? inFlight = null;
        try
        {
            while (true)
            {
                if (inFlight is null)
                {
                    // Completed and empty: everything queued before shutdown has been answered.
                    if (!await reader.WaitToReadAsync(CancellationToken.None))
                    {
                        return;
                    }
                    inFlight = Start(reader);
                }

                var batch = inFlight;
                IReadOnlyList<BatchItemResult>? results = null;
                List<Publication> publications = [];
                Exception? failure = null;
                try
                {
                    results = await batch.Storing;
                    Measure(results);
                    // The mark must include this batch before the next one is sent with it.
                    publications = Plan(batch.Submissions, results, ref _publishedUpTo);
                }
                catch (Exception e)
                {
                    (results, failure) = (null, e);
                }

                if (results is null && IsBadValue(failure!))
                {
                    // One message whose values the database refuses (a hole in the frame reader's checks) must not
                    // fail the others of its batch: each is stored alone, in queue order, before anything queued
                    // after them is sent, so seq and publication order hold.
                    BatchIsolated(_logger, failure!, batch.Items.Count);
                    await StoreOneByOneAsync(batch, failure!);
                    inFlight = null;
                    continue;
                }

                // Group commit: what queued while that batch was in the database goes now, and travels while this
                // one is published. It is published after this one, so the order holds.
                inFlight = reader.TryPeek(out _) ? Start(reader) : null;

                if (results is null)
                {
                    _metrics.WriterBatchFailures.Add();
                    LogBatchFailed(failure!, batch.Items.Count);
                    foreach (var item in batch.Items)
                    {
                        item.TrySetException(failure!);
                    }
                    continue;
                }
                try
                {
                    await PublishAsync(publications);
                }
                finally
                {
                    for (var i = 0; i < batch.Items.Count; i++)
                    {
                        batch.Items[i].TrySetResult(results[i].Result);
                    }
                }
            }
        }
        catch (Exception e)
        {
            // A bug, not a database fault (those fail one batch). Nothing may wait forever on a dead loop.
            WriterFailed(_logger, e);
            _queue.Writer.TryComplete(e);
            foreach (var item in inFlight?.Items ?? [])
            {
                item.TrySetException(e);
            }
            while (reader.TryRead(out var item))
            {
                item.TrySetException(e);
            }
        }
    }

    /// <summary>A data exception (class 22) or an integrity violation (class 23) that the statement does not handle itself: the values, not the database, are at fault.</summary>
    private static bool IsBadValue(Exception exception) =>
        exception is Npgsql.PostgresException { SqlState: var state } && (state.StartsWith("22", StringComparison.Ordinal) || state.StartsWith("23", StringComparison.Ordinal));

    /// <summary>
    /// Stores the batch's messages one at a time: those the database refuses fail with
    /// <see cref="MessageRefusedException"/>, the others are stored and published as usual. A failure of another
    /// kind (the database went away) fails the rest of the batch at once, as a failed batch does, rather than
    /// making each message wait out the retries on its own.
    /// </summary>
    private async Task StoreOneByOneAsync(Batch batch, Exception refusal)
    {
        if (batch.Items.Count == 1)
        {
            // Alone already: the batch's failure is this message's.
            _metrics.WriterBatchFailures.Add();
            batch.Items[0].TrySetException(new MessageRefusedException(refusal));
            return;
        }
        for (var i = 0; i < batch.Items.Count; i++)
        {
            var item = batch.Items[i];
            var submission = batch.Submissions[i];
            IReadOnlyList<BatchItemResult> results;
            try
            {
                Interlocked.Increment(ref _batches);
                results = await TimedAsync(_repository.StoreBatchAsync([submission.Message], _publishedUpTo, _abort.Token), Stopwatch.GetTimestamp());
                Measure(results);
            }
            catch (Exception e)
            {
                _metrics.WriterBatchFailures.Add();
                if (IsBadValue(e))
                {
                    item.TrySetException(new MessageRefusedException(e));
                    continue;
                }
                LogBatchFailed(e, batch.Items.Count - i);
                foreach (var rest in batch.Items.Skip(i))
                {
                    rest.TrySetException(e);
                }
                return;
            }
            try
            {
                await PublishAsync(Plan([submission], results, ref _publishedUpTo));
            }
            finally
            {
                item.TrySetResult(results[0].Result);
            }
        }
    }

    private Batch Start(ChannelReader<Pending> reader)
    {
        var items = new List<Pending>(Math.Min(_maxBatchSize, reader.Count));
        while (items.Count < _maxBatchSize && reader.TryRead(out var item))
        {
            items.Add(item);
        }
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _messages, items.Count);
        var submissions = items.ConvertAll(i => i.Submission);
        var started = Stopwatch.GetTimestamp();
        var storing = TimedAsync(StoreAsync(submissions.ConvertAll(s => s.Message)), started);
        return new Batch(items, submissions, storing);
    }

    private async Task<IReadOnlyList<BatchItemResult>> StoreAsync(List<NewMessage> messages)
    {
        if (_publishedUpTo == MarkUnknown)
        {
            // Before this process stores anything: every message at or below the mark was stored by a process
            // before this one (or by another gateway), and is not this writer's to publish. If this read fails, the
            // batch fails with it, and the next one reads again.
            _publishedUpTo = await _repository.HighestMessageIdAsync(_abort.Token);
        }
        return await _repository.StoreBatchAsync(messages, _publishedUpTo, _abort.Token);
    }

    // Timed where the results arrive: the loop may take them later, after publishing the batch before.
    private async Task<IReadOnlyList<BatchItemResult>> TimedAsync(Task<IReadOnlyList<BatchItemResult>> storing, long started)
    {
        var results = await storing;
        _metrics.WriterBatchSeconds.Observe(Stopwatch.GetTimestamp() - started);
        return results;
    }

    private void Measure(IReadOnlyList<BatchItemResult> results)
    {
        _metrics.WriterBatchSize.Observe(results.Count);
        var (stored, duplicates) = (0, 0);
        foreach (var (result, _) in results)
        {
            stored += result.Outcome == StoreOutcome.Stored ? 1 : 0;
            duplicates += result.Outcome == StoreOutcome.Duplicate ? 1 : 0;
        }
        _metrics.MessagesStored.Add(stored);
        _metrics.MessagesDuplicate.Add(duplicates);
    }

    private async ValueTask PublishAsync(List<Publication> publications)
    {
        // A membership change of one of these conversations that is being applied goes first (MembershipFences).
        if (_fences.AnyFenced)
        {
            await _fences.WaitOpenAsync(publications.Select(p => p.Message.ConversationId).Distinct());
        }
        foreach (var (message, except) in publications)
        {
            var frame = new OutboundFrame(FrameWriter.Message(message, isCatchup: false), message.ConversationId, message.Seq);
            _publisher.PublishToConversation(message.ConversationId, frame, except);
        }
    }

    /// <summary>
    /// What a stored batch publishes, in message-id order (which is seq order within each conversation): each message
    /// it stored, and each duplicate's original that was never published (above <paramref name="publishedUpTo"/>),
    /// each once. Raises <paramref name="publishedUpTo"/> to the highest id published.
    /// </summary>
    internal static List<Publication> Plan(IReadOnlyList<Submission> items, IReadOnlyList<BatchItemResult> results, ref long publishedUpTo)
    {
        if (results.Count != items.Count)
        {
            throw new InvalidOperationException($"A batch of {items.Count} messages returned {results.Count} results.");
        }
        var publications = new List<Publication>();
        var published = new HashSet<long>();
        for (var i = 0; i < items.Count; i++)
        {
            var (result, twin) = results[i];
            var (message, sender, connection) = items[i];
            var body = result.Outcome switch
            {
                StoreOutcome.Stored => new MessageBody(message.Content, message.MessageType, message.ReplyToMessageId, message.MediaUrl),
                StoreOutcome.Duplicate when twin is not null && result.MessageId > publishedUpTo => twin,
                _ => null,
            };
            if (body is null || !published.Add(result.MessageId))
            {
                continue;
            }
            publications.Add(new Publication(new StoredMessage
            {
                MessageId = result.MessageId,
                ConversationId = result.ConversationId,
                Seq = result.Seq,
                SenderId = message.SenderId,
                SenderName = sender.DisplayName,
                SenderAvatarUrl = sender.AvatarUrl,
                Content = body.Content,
                MessageType = body.MessageType,
                ReplyToMessageId = body.ReplyToMessageId,
                MediaUrl = body.MediaUrl,
                ClientMessageId = message.ClientMessageId,
                CreatedAt = result.CreatedAt,
                EditedAt = body.EditedAt,
                ChangeSeq = body.ChangeSeq,
            }, connection));
        }
        publications.Sort((a, b) => a.Message.MessageId.CompareTo(b.Message.MessageId));
        if (publications.Count > 0)
        {
            var highest = publications[^1].Message.MessageId;
            publishedUpTo = publishedUpTo == MarkUnknown ? highest : Math.Max(publishedUpTo, highest);
        }
        return publications;
    }

    /// <summary>An unreachable database, once per batch without its stack (an outage fails every batch); anything else with it.</summary>
    private void LogBatchFailed(Exception failure, int count)
    {
        if (DatabaseResilience.IsUnavailable(failure))
        {
            BatchFailedOnDatabase(_logger, count, failure.Message);
        }
        else
        {
            BatchFailed(_logger, failure, count);
        }
    }

    [LoggerMessage(1, LogLevel.Warning, "Storing a batch of {Count} messages failed; each sender is told to retry")]
    private static partial void BatchFailed(ILogger logger, Exception exception, int count);

    [LoggerMessage(5, LogLevel.Warning, "Storing a batch of {Count} messages failed, the database is unavailable ({Reason}); each sender is told to retry")]
    private static partial void BatchFailedOnDatabase(ILogger logger, int count, string reason);

    [LoggerMessage(4, LogLevel.Error, "The database refused a value in a batch of {Count} messages; storing them one by one so that only a refused one fails")]
    private static partial void BatchIsolated(ILogger logger, Exception exception, int count);

    [LoggerMessage(2, LogLevel.Critical, "The message writer failed; messages can no longer be stored")]
    private static partial void WriterFailed(ILogger logger, Exception exception);

    [LoggerMessage(6, LogLevel.Error, "Connection {ConnectionId} of user {UserId} closed while its message waited, and the database refused a value of that message; it was not stored")]
    private static partial void AbandonedMessageRefused(ILogger logger, Exception exception, long connectionId, long userId);

    [LoggerMessage(3, LogLevel.Information, "Message writer stopped after {Messages} messages in {Batches} batches")]
    private static partial void WriterStopped(ILogger logger, long messages, long batches);

    /// <summary>A message as handed to the writer: what to store, who sent it, and the connection that gets the ack instead of a copy.</summary>
    internal readonly record struct Submission(NewMessage Message, ConnectedUser Sender, ChatConnection? Connection);

    private sealed class Pending(Submission submission) : TaskCompletionSource<StoreResult>(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public Submission Submission { get; } = submission;
    }

    /// <summary>A committed message to publish, and the connection that gets the ack instead of a copy.</summary>
    internal readonly record struct Publication(StoredMessage Message, ChatConnection? Except);

    private sealed record Batch(List<Pending> Items, List<Submission> Submissions, Task<IReadOnlyList<BatchItemResult>> Storing);
}

/// <summary>
/// The database refused a value of this message that the frame reader let through (a data or integrity error):
/// resending it unchanged cannot succeed. The other messages of its batch were stored without it.
/// </summary>
public sealed class MessageRefusedException(Exception inner) : Exception("The database refused a value of this message.", inner);
