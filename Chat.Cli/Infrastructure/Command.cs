namespace Chat.Cli.Infrastructure;

/// <summary>
/// One subcommand: its name (one or two words, as <c>conversations list</c>), a one-line summary for
/// <c>chat --help</c>, its help text, the options that take a value, the flags, and what it does.
/// </summary>
internal sealed record Command(
    string Name,
    string Summary,
    string Help,
    IReadOnlyCollection<string> Options,
    IReadOnlyCollection<string> Flags,
    Func<Arguments, CliContext, Task<int>> RunAsync)
{
    public string[] Words => Name.Split(' ');
}
