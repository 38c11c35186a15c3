using System.Globalization;
using Chat.Tests.Infrastructure;

namespace Chat.Tests;

/// <summary>
/// Owns the run's <see cref="ReliabilityLedger"/>. When <c>CHAT_WRITE_FIGURES=1</c> is set and every test
/// passed, it writes the ledger into <c>docs/reliability.md</c> between the figure markers; an ordinary run
/// leaves the file alone.
/// </summary>
[SetUpFixture]
public sealed class ReliabilityReport
{
    public const string EnvironmentVariable = "CHAT_WRITE_FIGURES";
    public const string BeginMarker = "<!-- figures:begin (written by the test suite; do not edit by hand) -->";
    public const string EndMarker = "<!-- figures:end -->";

    public static ReliabilityLedger Ledger { get; } = new();

    [OneTimeTearDown]
    public void WriteFigures()
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) != "1")
        {
            return;
        }
        var result = TestContext.CurrentContext.Result;
        if (result.FailCount > 0 || Ledger.IsEmpty)
        {
            TestContext.Progress.WriteLine($"docs/reliability.md not written: {result.FailCount} failed tests, ledger {(Ledger.IsEmpty ? "empty" : "filled")}.");
            return;
        }
        var path = Path.Combine(TestDatabase.RepositoryRoot, "docs", "reliability.md");
        var document = File.ReadAllText(path);
        var begin = document.IndexOf(BeginMarker, StringComparison.Ordinal);
        var end = document.IndexOf(EndMarker, StringComparison.Ordinal);
        if (begin < 0 || end < begin)
        {
            Assert.Fail($"{path} lacks the figure markers {BeginMarker} ... {EndMarker}.");
        }
        var stamp = string.Create(CultureInfo.InvariantCulture,
            $"_{result.PassCount} tests passed, {result.FailCount} failed; written {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC._");
        File.WriteAllText(path, document[..(begin + BeginMarker.Length)] + "\n\n" + stamp + "\n\n" + Ledger.ToMarkdown() + "\n" + document[end..]);
        TestContext.Progress.WriteLine($"Figures written to {path}.");
    }
}
