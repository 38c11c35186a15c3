namespace Chat.Cli.Infrastructure;

/// <summary>What a command may touch: its streams, the environment and the cancellation of Ctrl-C.</summary>
internal sealed record CliContext(TextReader Input, TextWriter Output, TextWriter Error, Func<string, string?> Environment, CancellationToken Cancellation);
