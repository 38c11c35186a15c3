using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Chat.Tests.Protocol;

/// <summary>
/// One JSON example of <c>docs/protocol.md</c> or <c>docs/http-api.md</c>: a value of a <c>```json</c> block (a block
/// may hold several, one after the other), or a frame of a <c>```text</c> transcript (a line <c>← {...}</c> from the
/// server, <c>→ {...}</c> from the client).
/// </summary>
/// <param name="Kind">
/// What the example shows: <c>frame:&lt;type&gt;</c> (a server frame), <c>client:&lt;type&gt;</c> (a client frame),
/// <c>http:&lt;body&gt;</c> (a response body), <c>http-request:&lt;body&gt;</c> (a request body), or null when no rule
/// below places it.
/// </param>
/// <param name="Unreadable">Why the example is not JSON, when it is not; it then has no <paramref name="Json"/>.</param>
public sealed record SpecExample(string Document, int Line, string Heading, string? Kind, JsonElement Json, string? Unreadable = null)
{
    public override string ToString() => $"{Document}:{Line} {Kind ?? "(unplaced)"}";
}

public static partial class SpecExamples
{
    public const string Protocol = "protocol.md";
    public const string HttpApi = "http-api.md";

    // The HTTP examples by the heading they stand under, in their order there. A new example block fails
    // Every_json_example_of_the_specs_is_placed until it has a rule here, and with it a check.
    private static readonly Dictionary<string, string[]> HttpKinds = new()
    {
        ["Conventions"] = ["http:problem", "http:problem"],
        ["`GET /api/users/me`"] = ["http:user"],
        ["`POST /api/conversations`"] = ["http-request:conversation", "http:conversation"],
        ["`GET /api/conversations?cursor=&limit=`"] = ["http:conversation-page"],
        ["`GET /api/conversations/{id}`"] = ["http:conversation-detail"],
        ["`GET /api/conversations/{id}/messages?afterSeq=&beforeSeq=&limit=`"] = ["http:message-page"],
    };

    public static IReadOnlyList<SpecExample> All { get; } = [.. Read(Protocol), .. Read(HttpApi)];

    private static IEnumerable<SpecExample> Read(string document)
    {
        var lines = File.ReadAllLines(Path.Combine(TestDatabase.RepositoryRoot, "docs", document));
        var (chapter, heading) = ("", "");
        var ordinal = 0;
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimStart();
            if (line.StartsWith('#'))
            {
                heading = line.TrimStart('#').Trim();
                chapter = line.StartsWith("## ") ? heading : chapter;
                ordinal = 0;
                continue;
            }
            if (!line.StartsWith("```"))
            {
                continue;
            }
            var language = line[3..].Trim();
            var start = i + 1;
            do
            {
                i++;
            } while (i < lines.Length && !lines[i].TrimStart().StartsWith("```"));
            var block = lines[start..Math.Min(i, lines.Length)];
            List<(JsonElement, int, char?)> values = [];
            string? unreadable = null;
            try
            {
                values = language switch
                {
                    "json" => [.. Values(block, start)],
                    // A transcript: the frames it shows either way are examples too, placed by their arrow rather
                    // than by the chapter they stand in.
                    "text" => [.. block.Select((text, n) => (Frame: TranscriptFrame().Match(text), Line: start + n + 1))
                        .Where(l => l.Frame.Success)
                        .Select(l => (JsonElement.Parse(l.Frame.Groups[2].Value), l.Line, (char?)l.Frame.Groups[1].Value[0]))],
                    _ => [],
                };
            }
            catch (JsonException e)
            {
                unreadable = e.Message;
            }
            if (unreadable is not null)
            {
                ordinal++;
                yield return new SpecExample(document, start + 1, heading, null, default, unreadable);
            }
            foreach (var (json, lineNumber, arrow) in values)
            {
                var kind = document == Protocol ? ProtocolKind(chapter, arrow, json) : HttpKind(heading, ordinal);
                ordinal++;
                yield return new SpecExample(document, lineNumber, heading, kind, json);
            }
        }

        IEnumerable<(JsonElement, int, char?)> Values(string[] block, int firstLine)
        {
            var bytes = Encoding.UTF8.GetBytes(string.Join('\n', block));
            var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { AllowMultipleValues = true });
            var found = new List<(JsonElement, int, char?)>();
            while (reader.Read())
            {
                var at = firstLine + 1 + bytes.AsSpan(0, (int)reader.TokenStartIndex).Count((byte)'\n');
                found.Add((JsonElement.ParseValue(ref reader), at, null));
            }
            return found;
        }
    }

    // A transcript's arrow says who sends the frame; otherwise §6 shows server frames, §5 client frames.
    private static string? ProtocolKind(string chapter, char? arrow, JsonElement json)
    {
        var type = json.ValueKind == JsonValueKind.Object && json.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        return (arrow, chapter.Split(' ')[0], type) switch
        {
            (_, _, null) => null,
            ('←', _, _) or (null, "6.", _) => "frame:" + type,
            ('→', _, _) or (null, "5.", _) => "client:" + type,
            _ => null,
        };
    }

    // "← {...}" or "→ {...}": a line that starts with an arrow and then an object is a frame, and must parse as one
    // ("→ GET /ws ..." is not a frame).
    [GeneratedRegex(@"^\s*([←→])\s*(\{.*)$")]
    private static partial Regex TranscriptFrame();

    private static string? HttpKind(string heading, int ordinal) =>
        HttpKinds.TryGetValue(heading, out var kinds) && ordinal < kinds.Length ? kinds[ordinal] : null;
}
