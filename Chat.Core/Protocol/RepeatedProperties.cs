using System.Text.Json;

namespace Chat.Core.Protocol;

/// <summary>
/// Which property a JSON text holds twice, for the error that names it: the parser that refuses repeats does not
/// say which one it met, so the text is read again with repeats allowed. Used on the error path only.
/// </summary>
public static class RepeatedProperties
{
    /// <summary>Longest path given back; a longer one is cut, as it goes into an error message.</summary>
    public const int MaxPathLength = 64;

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
    /// <remarks>
    /// The path is kept as segments and joined only for the answer: joined at every step, a deep or wide text with
    /// long names would cost the product of its names' lengths and its elements.
    /// </remarks>
    public static string? In(JsonElement element)
    {
        var path = new List<string>();
        return In(element, path) ? Join(path) : null;
    }

    /// <summary>The names that <paramref name="root"/>, an object, holds more than once, at its top level only.</summary>
    public static HashSet<string> AtTopLevel(JsonElement root)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var repeated = new HashSet<string>(StringComparer.Ordinal);
        if (root.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in root.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                {
                    repeated.Add(property.Name);
                }
            }
        }
        return repeated;
    }

    private static bool In(JsonElement element, List<string> path)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in element.EnumerateObject())
            {
                path.Add(property.Name);
                if (!names.Add(property.Name) || In(property.Value, path))
                {
                    return true;
                }
                path.RemoveAt(path.Count - 1);
            }
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            var index = 0;
            foreach (var item in element.EnumerateArray())
            {
                path.Add($"[{index++}]");
                if (In(item, path))
                {
                    return true;
                }
                path.RemoveAt(path.Count - 1);
            }
        }
        return false;
    }

    private static string Join(List<string> path)
    {
        var joined = new System.Text.StringBuilder();
        foreach (var segment in path)
        {
            if (joined.Length > 0 && !segment.StartsWith('['))
            {
                joined.Append('.');
            }
            joined.Append(segment);
            if (joined.Length > MaxPathLength)
            {
                break;
            }
        }
        if (joined.Length <= MaxPathLength)
        {
            return joined.ToString();
        }
        var cut = char.IsHighSurrogate(joined[MaxPathLength - 1]) ? MaxPathLength - 1 : MaxPathLength;
        return joined.ToString(0, cut) + "...";
    }
}
