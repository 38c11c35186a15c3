using Chat.Tests.Infrastructure;

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

public static class SpecTables
{
    public static IReadOnlyList<SpecTable> All { get; } = [.. Read(SpecExamples.Protocol), .. Read(SpecExamples.HttpApi)];

    /// <summary>
    /// The tables of the client frames (protocol §5: <c>| field | JSON type | required | default | rules |</c>). A field
    /// that is not required is optional, and may also be sent as <c>null</c> (§5: both mean the default).
    /// </summary>
    public static IReadOnlyList<SpecTable> Client { get; } =
    [
        .. from table in MarkdownTables.Read(Path.Combine("docs", SpecExamples.Protocol))
           where table.Header is ["field", "JSON type", "required", "default", "rules"]
           select new SpecTable(SpecExamples.Protocol, table.Line, table.Title, [.. table.Rows.SelectMany(ClientFields)]),
    ];

    private static IEnumerable<SpecTable> Read(string document) =>
        from table in MarkdownTables.Read(Path.Combine("docs", document))
        where table.Header is ["field", "JSON type" or "type", "meaning"]
        select new SpecTable(document, table.Line, table.Title, [.. table.Rows.SelectMany(Fields)]);

    private static IEnumerable<SpecField> ClientFields(MarkdownRow row)
    {
        var optional = !row.Cells[2].StartsWith("yes");
        return MarkdownTables.Code(row.Cells[0]).Select(name => new SpecField(name, row.Cells[1], optional, optional));
    }

    private static IEnumerable<SpecField> Fields(MarkdownRow row)
    {
        var type = row.Cells[1];
        var kind = type.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        return MarkdownTables.Code(row.Cells[0]).Select(name => new SpecField(name, kind, type.Contains("nullable"), type.Contains("optional")));
    }
}
