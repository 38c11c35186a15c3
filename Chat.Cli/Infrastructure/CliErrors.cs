namespace Chat.Cli.Infrastructure;

/// <summary>A bad command line: the command prints the message and a pointer to its help, and exits 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>The command could not do its work (gateway down, token refused, not found): one line, exit 1.</summary>
internal class CliFailure(string message) : Exception(message);

/// <summary>The gateway answered a WebSocket handshake with <see cref="Status"/> instead of an upgrade.</summary>
internal sealed class HandshakeRefused(int status, string message) : CliFailure(message)
{
    public int Status { get; } = status;
}

/// <summary>
/// The gateway refused a value the command line gave (HTTP 400: a title too long, a bad cursor): a bad command line
/// too, so exit 2 with a pointer to the help, though only the gateway could tell.
/// </summary>
internal sealed class ValueRefused(string message) : CliFailure(message);

