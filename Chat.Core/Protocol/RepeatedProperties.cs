using System.Text.Json;

namespace Chat.Core.Protocol;

/// <summary>
/// Which property a JSON text holds twice, for the error that names it: the parser that refuses repeats does not
/// say which one it met, so the text is read again with repeats allowed. Used on the error path only.
/// </summary>
public static class RepeatedProperties
{
    /// <summary>
    /// The first property that an object of <paramref name="utf8Json"/> holds twice, as a path (<c>title</c>,
    /// <c>a.b</c>, <c>a[0].b</c>); null when the text is not JSON at all, repeats nothing, or has a property name
    /// that is not text.
    /// </summary>
    public static string? Find(ReadOnlyMemory<byte> utf8Json)
    {
        try
        {
            using var document = JsonDocument.Parse(utf8Json);
            return In(document.RootElement);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>The first property that an object of <paramref name="element"/> holds twice, as a path; null when none is.</summary>
    public static string? In(JsonElement element) => In(element, path: "");

    private static string? In(JsonElement element, string path)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in element.EnumerateObject())
            {
                var name = path.Length == 0 ? property.Name : $"{path}.{property.Name}";
                if (!names.Add(property.Name))
                {
                    return name;
                }
                if (In(property.Value, name) is { } inner)
                {
                    return inner;
                }
            }
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            var index = 0;
            foreach (var item in element.EnumerateArray())
            {
                if (In(item, $"{path}[{index++}]") is { } inner)
                {
                    return inner;
                }
            }
        }
        return null;
    }
}
