using System.Text.RegularExpressions;

namespace Chat.Tests.Protocol;

/// <summary>One row of a field table: a field's path (<c>conversations[].lastSeq</c>) and its documented JSON type.</summary>
/// <param name="Kind">number, string, boolean, object or array; null when the row gives no type (it refers to another table).</param>
public sealed record SpecField(string Path, string? Kind, bool Nullable, bool Optional);

/// <summary>
/// A table of the fields of a server frame or response body (<c>| field | JSON type | meaning |</c> in protocol.md,
/// <c>| field | type | meaning |</c> in http-api.md), under the heading or bold title that names it.
/// </summary>
public sealed record SpecTable(string Document, int Line, string Title, IReadOnlyList<SpecField> Fields)
{
    public override string ToString() => $"{Document}:{Line} {Title}";
}

public static partial class SpecTables
{
    public static IReadOnlyList<SpecTable> All { get; } = [.. Read(SpecExamples.Protocol), .. Read(SpecExamples.HttpApi)];

    private static IEnumerable<SpecTable> Read(string document)
    {
        var lines = File.ReadAllLines(Path.Combine(TestDatabase.RepositoryRoot, "docs", document));
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
            else if (line is "| field | JSON type | meaning |" or "| field | type | meaning |")
            {
                var at = i + 1;
                var fields = new List<SpecField>();
                // Past the header and its | --- | line, a row per field until the table ends.
                for (i += 2; i < lines.Length && lines[i].StartsWith('|'); i++)
                {
                    var cells = lines[i].Split('|');
                    var type = cells[2].Trim();
                    var kind = type.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
                    foreach (Match name in Code().Matches(cells[1]))
                    {
                        fields.Add(new SpecField(name.Groups[1].Value, kind, type.Contains("nullable"), type.Contains("optional")));
                    }
                }
                yield return new SpecTable(document, at, title, fields);
            }
        }
    }

    [GeneratedRegex(@"^\*\*(\w+)\*\*")]
    private static partial Regex BoldTitle();

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex Code();
}
