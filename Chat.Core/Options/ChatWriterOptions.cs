using System.ComponentModel.DataAnnotations;

namespace Chat.Core.Options;

/// <summary><c>Chat:Writer</c>: the single writer that stores messages in batches (see <c>MessageWriter</c>).</summary>
public sealed class ChatWriterOptions
{
    public const string Section = "Chat:Writer";

    /// <summary>Most messages stored in one batch (one round trip, one commit); more waiting go in the next one.</summary>
    [Range(1, 10_000, ErrorMessage = "Chat:Writer:MaxBatchSize must be between {1} and {2}.")]
    public int MaxBatchSize { get; set; } = 256;

    /// <summary>
    /// Messages that may wait for the writer. Each connection has at most one message in flight, so this is only
    /// reached with more sending connections than that; a sender then waits for room before its frame is handled.
    /// </summary>
    [Range(1, 1_000_000, ErrorMessage = "Chat:Writer:QueueCapacity must be between {1} and {2}.")]
    public int QueueCapacity { get; set; } = 4096;
}
