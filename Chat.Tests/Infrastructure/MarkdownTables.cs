using System.Text.RegularExpressions;

namespace Chat.Tests.Infrastructure;

/// <summary>One row of a markdown table: its cells, trimmed, without the outer pipes.</summary>
/// <param name="Line">The row's line in its document, from 1.</param>
public sealed record MarkdownRow(int Line, IReadOnlyList<string> Cells);

/// <summary>A markdown table of one of the repository's documents, under the heading or bold title that names it.</summary>
/// <param name="Line">The header's line, from 1.</param>
public sealed record MarkdownTable(string Document, int Line, string Title, IReadOnlyList<string> Header, IReadOnlyList<MarkdownRow> Rows)
{
    public override string ToString() => $"{Document}:{Line} {Title}";
}

/// <summary>
/// The tables of the documents that the tests hold the code to (docs/protocol.md, docs/http-api.md, README.md): a
/// header line, its <c>| --- |</c> line, then a row per line until the table ends.
/// </summary>
public static partial class MarkdownTables
{
    /// <param name="document">The document's path from the repository's root, e.g. <c>docs/protocol.md</c>.</param>
    public static IReadOnlyList<MarkdownTable> Read(string document)
    {
        var lines = File.ReadAllLines(Path.Combine(TestDatabase.RepositoryRoot, document));
        var tables = new List<MarkdownTable>();
        var title = "";
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.StartsWith('#'))
            {
                title = line.TrimStart('#').Trim();
            }
            else if (BoldTitle().Match(line) is { Success: true } bold)
            {
                title = bold.Groups[1].Value;
            }
            else if (line.StartsWith('|') && i + 1 < lines.Length && Separator().IsMatch(lines[i + 1]))
            {
                var header = new MarkdownRow(i + 1, Cells(line));
                var rows = new List<MarkdownRow>();
                for (i += 2; i < lines.Length && lines[i].StartsWith('|'); i++)
                {
                    rows.Add(new MarkdownRow(i + 1, Cells(lines[i])));
                }
                tables.Add(new MarkdownTable(Path.GetFileName(document), header.Line, title, header.Cells, rows));
            }
        }
        return tables;
    }

    /// <summary>The texts in backticks of a cell: field names, keys, series.</summary>
    public static IEnumerable<string> Code(string cell) => CodeSpan().Matches(cell).Select(match => match.Groups[1].Value);

    // A pipe escaped as \| (`add\|remove`) is part of its cell, and is shown without the backslash.
    private static string[] Cells(string line) =>
        [.. CellBoundary().Split(line.Trim().Trim('|')).Select(cell => cell.Replace("\\|", "|").Trim())];

    [GeneratedRegex(@"^\*\*(\w+)\*\*")]
    private static partial Regex BoldTitle();

    [GeneratedRegex(@"^\|(\s*:?-+:?\s*\|)+\s*$")]
    private static partial Regex Separator();

    [GeneratedRegex(@"(?<!\\)\|")]
    private static partial Regex CellBoundary();

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex CodeSpan();
}
