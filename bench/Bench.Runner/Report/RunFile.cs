using System.Text.Json;
using System.Text.Json.Serialization;

namespace Bench.Runner.Report;

/// <summary>
/// Everything a run measured, as JSON beside its report, so that the report and the chart can be drawn again
/// (<c>--render</c>) without measuring again.
/// </summary>
internal static class RunFile
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        // The PostgreSQL settings are (name, value) tuples; a latency that was never measured is NaN.
        IncludeFields = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static void Write(string path, RunRecord run) => File.WriteAllText(path, JsonSerializer.Serialize(run, Options));

    public static RunRecord Read(string path) =>
        JsonSerializer.Deserialize<RunRecord>(File.ReadAllText(path), Options) ?? throw new ArgumentException($"{path} holds no run.");
}
