namespace Bench.LoadGen.Targets;

/// <summary>
/// A tag unique to this generator process, put in every clientMessageId, so that two runs against the same
/// database never reuse a key (the server would answer the second with the first message's ack).
/// </summary>
internal static class LoadRunTag
{
    public static readonly string Value = Convert.ToHexStringLower(BitConverter.GetBytes(Random.Shared.NextInt64()))[..10];
}
