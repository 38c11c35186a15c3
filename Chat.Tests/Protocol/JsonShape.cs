using System.Text.Json;

namespace Chat.Tests.Protocol;

/// <summary>
/// Compares the shape of two JSON values: the same property names, each with the same kind of value (number, string,
/// boolean, null, array, object), recursively. Values themselves are not compared: an example's ids and times are
/// made up.
/// </summary>
public static class JsonShape
{
    /// <summary>What differs between <paramref name="example"/> and <paramref name="real"/>; empty when they have the same shape.</summary>
    /// <param name="optional">
    /// Paths (<c>name</c>, <c>items[].name</c>) of properties that may be absent on either side. When present on both,
    /// they are compared as any other.
    /// </param>
    public static List<string> Differences(JsonElement example, JsonElement real, IReadOnlySet<string> optional)
    {
        var differences = new List<string>();
        Compare(example, real, "", optional, differences);
        return differences;
    }

    public static string KindOf(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.True or JsonValueKind.False => "boolean",
        var kind => kind.ToString().ToLowerInvariant(),
    };

    private static void Compare(JsonElement example, JsonElement real, string path, IReadOnlySet<string> optional, List<string> differences)
    {
        var (exampleKind, realKind) = (KindOf(example), KindOf(real));
        if (exampleKind != realKind)
        {
            differences.Add($"{Show(path)} is {exampleKind} in the example, {realKind} from the server");
            return;
        }
        if (example.ValueKind == JsonValueKind.Object)
        {
            var exampleNames = example.EnumerateObject().Select(p => p.Name).ToList();
            var realNames = real.EnumerateObject().Select(p => p.Name).ToHashSet();
            foreach (var repeated in exampleNames.GroupBy(n => n).Where(g => g.Count() > 1))
            {
                differences.Add($"{Show(Join(path, repeated.Key))} appears {repeated.Count()} times in the example");
            }
            foreach (var name in exampleNames.Distinct())
            {
                var at = Join(path, name);
                if (realNames.Contains(name))
                {
                    Compare(example.GetProperty(name), real.GetProperty(name), at, optional, differences);
                }
                else if (!optional.Contains(at))
                {
                    differences.Add($"{Show(at)} is in the example, not sent by the server");
                }
            }
            foreach (var name in realNames.Except(exampleNames))
            {
                if (!optional.Contains(Join(path, name)))
                {
                    differences.Add($"{Show(Join(path, name))} is sent by the server, not in the example");
                }
            }
        }
        else if (example.ValueKind == JsonValueKind.Array)
        {
            // Entry i of the example is compared with entry i of the real array (its last when it is shorter), so a
            // scenario can line up entries whose nullable fields differ (a member who has been seen and one who has not).
            var entries = real.EnumerateArray().ToList();
            var i = 0;
            foreach (var entry in example.EnumerateArray())
            {
                if (entries.Count == 0)
                {
                    differences.Add($"{Show(path)} is empty from the server: the scenario must produce an entry to compare");
                    return;
                }
                Compare(entry, entries[Math.Min(i++, entries.Count - 1)], path + "[]", optional, differences);
            }
        }
    }

    /// <summary>
    /// What differs between a field table and <paramref name="real"/>, the table describing the objects at
    /// <paramref name="at"/> (<c>items[]</c>): each field is there (unless optional) with its kind (or null when
    /// nullable), and each object the table describes has no field that the table does not list.
    /// </summary>
    /// <param name="source">Where <paramref name="real"/> comes from, as the differences name it: "sent by the server", "in the example".</param>
    public static List<string> TableDifferences(IReadOnlyList<SpecField> fields, JsonElement real, string at, string source = "sent by the server")
    {
        var differences = new List<string>();
        var listed = fields.Select(f => f.Path).ToHashSet();
        foreach (var level in fields.Select(f => Parent(f.Path)).Distinct())
        {
            var objects = At(real, Join(at, level)).Where(o => o.ValueKind == JsonValueKind.Object).ToList();
            if (objects.Count == 0)
            {
                differences.Add($"{Show(Join(at, level))} holds no object {source}: there must be one to compare");
            }
            foreach (var field in fields.Where(f => Parent(f.Path) == level))
            {
                var path = Join(at, field.Path);
                foreach (var o in objects)
                {
                    if (!o.TryGetProperty(field.Path[(level.Length == 0 ? 0 : level.Length + 1)..], out var value))
                    {
                        if (!field.Optional)
                        {
                            differences.Add($"{Show(path)} is in the table, not {source}");
                        }
                    }
                    else if (field.Kind is { } kind && KindOf(value) != kind && !(field.Nullable && value.ValueKind == JsonValueKind.Null))
                    {
                        differences.Add($"{Show(path)} is {kind}{(field.Nullable ? " or null" : "")} in the table, {KindOf(value)} {source}");
                    }
                }
            }
            foreach (var name in objects.SelectMany(o => o.EnumerateObject()).Select(p => p.Name).Distinct())
            {
                if (!listed.Contains(Join(level, name)))
                {
                    differences.Add($"{Show(Join(at, Join(level, name)))} is {source}, not in the table");
                }
            }
        }
        return [.. differences.Distinct()];
    }

    /// <summary>The values at a path; <c>name[]</c> steps into every entry of an array.</summary>
    public static IEnumerable<JsonElement> At(JsonElement root, string path)
    {
        IEnumerable<JsonElement> values = [root];
        foreach (var step in path.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            var name = step.EndsWith("[]") ? step[..^2] : step;
            values = values.SelectMany(v => v.ValueKind == JsonValueKind.Object && v.TryGetProperty(name, out var child) ? [child] : Array.Empty<JsonElement>());
            if (step.EndsWith("[]"))
            {
                values = values.SelectMany(v => v.ValueKind == JsonValueKind.Array ? v.EnumerateArray() : Enumerable.Empty<JsonElement>());
            }
        }
        return values;
    }

    private static string Parent(string path) => path.LastIndexOf('.') is var dot and >= 0 ? path[..dot] : "";

    public static string Join(string path, string name) => path.Length == 0 ? name : name.Length == 0 ? path : path + "." + name;

    private static string Show(string path) => path.Length == 0 ? "the value" : $"\"{path}\"";
}
