namespace Chat.Cli.Smoke;

/// <summary>One named check of <c>chat smoke</c>; it is skipped when a check it <paramref name="Requires"/> did not pass.</summary>
internal sealed record SmokeCheck(string Name, Func<CancellationToken, Task> RunAsync, params string[] Requires);

/// <summary>A check found the gateway behaving against the spec; the message says how.</summary>
internal sealed class SmokeFailure(string message) : Exception(message);
