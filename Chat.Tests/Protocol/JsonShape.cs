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

    private static string Join(string path, string name) => path.Length == 0 ? name : path + "." + name;

    private static string Show(string path) => path.Length == 0 ? "the value" : $"\"{path}\"";
}
