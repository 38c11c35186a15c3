namespace Chat.Cli.Infrastructure;

/// <summary>
/// The two-column lists of the help texts (commands, options, slash commands), laid out from their rows so that
/// every description of a list starts in one column, whatever the widest term and wherever the rows come from.
/// </summary>
internal static class HelpText
{
    private const string Indent = "  ";
    private const int Gap = 3;

    /// <summary>
    /// One line a row, indented by two spaces; a description's further lines (after <c>\n</c>) start in its column.
    /// </summary>
    public static string Table(IEnumerable<(string Term, string Description)> rows)
    {
        var list = rows.ToList();
        var column = list.Max(r => r.Term.Length) + Gap;
        var lines = list.SelectMany(r => r.Description.Split('\n').Select((line, i) => Indent + (i == 0 ? r.Term : "").PadRight(column) + line));
        return string.Join(Environment.NewLine, lines);
    }
}
