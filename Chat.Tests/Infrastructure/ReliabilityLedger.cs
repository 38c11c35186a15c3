using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Chat.Tests.Infrastructure;

/// <summary>
/// The suite's own counters for <c>docs/reliability.md</c>: faults injected and survived, bad inputs tried,
/// connections closed by cause and code, messages sent, acknowledged, stored and delivered. Tests record what
/// they did and saw once their assertions have passed, so a figure is only ever backed by a passing check.
/// One ledger per test run, owned by <see cref="Chat.Tests.ReliabilityReport"/>.
/// </summary>
public sealed class ReliabilityLedger
{
    private readonly ConcurrentDictionary<string, long> _faultsInjected = new();
    private readonly ConcurrentDictionary<string, long> _faultsSurvived = new();
    private readonly ConcurrentDictionary<string, long> _badInputs = new();
    private readonly ConcurrentDictionary<(string Kind, string Code, string Cause), long> _closes = new();
    private readonly ConcurrentDictionary<string, MessageTally> _messages = new();

    public void FaultInjected(string fault, long count = 1) => _faultsInjected.AddOrUpdate(fault, count, (_, n) => n + count);

    /// <summary>Call after the test has checked that the gateway came through <paramref name="fault"/>.</summary>
    public void FaultSurvived(string fault, long count = 1) => _faultsSurvived.AddOrUpdate(fault, count, (_, n) => n + count);

    public void BadInput(string kind, long count = 1) => _badInputs.AddOrUpdate(kind, count, (_, n) => n + count);

    /// <summary>A socket the server closed (or dropped), as its client saw it.</summary>
    public void SocketClosed(int code, string cause) => _closes.AddOrUpdate(("socket", code.ToString(CultureInfo.InvariantCulture), cause), 1, (_, n) => n + 1);

    /// <summary>A handshake refused with an HTTP status instead of an upgrade.</summary>
    public void HandshakeRefused(int status, string cause) => _closes.AddOrUpdate(("handshake", "HTTP " + status.ToString(CultureInfo.InvariantCulture), cause), 1, (_, n) => n + 1);

    /// <summary>
    /// The message counts of one run of a scenario. <paramref name="lost"/> (acknowledged but not stored) and
    /// <paramref name="duplicated"/> (stored more than once per key) are what the test measured, not assumed.
    /// </summary>
    public void Messages(string scenario, long sent, long acked, long stored, long delivered, long lost, long duplicated) =>
        _messages.AddOrUpdate(
            scenario,
            new MessageTally(1, sent, acked, stored, delivered, lost, duplicated),
            (_, t) => new MessageTally(t.Runs + 1, t.Sent + sent, t.Acked + acked, t.Stored + stored, t.Delivered + delivered, t.Lost + lost, t.Duplicated + duplicated));

    public bool IsEmpty => _faultsInjected.IsEmpty && _badInputs.IsEmpty && _closes.IsEmpty && _messages.IsEmpty;

    /// <summary>The figures as Markdown tables.</summary>
    public string ToMarkdown()
    {
        var text = new StringBuilder();
        text.AppendLine("### Faults injected and survived").AppendLine();
        text.AppendLine("| fault | injected | survived |").AppendLine("| --- | ---: | ---: |");
        foreach (var fault in _faultsInjected.Keys.Union(_faultsSurvived.Keys).Order(StringComparer.Ordinal))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {fault} | {_faultsInjected.GetValueOrDefault(fault)} | {_faultsSurvived.GetValueOrDefault(fault)} |");
        }

        text.AppendLine().AppendLine("### Bad inputs tried").AppendLine();
        text.AppendLine("| input | tried |").AppendLine("| --- | ---: |");
        foreach (var (kind, count) in _badInputs.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {kind} | {count} |");
        }
        text.AppendLine(CultureInfo.InvariantCulture, $"| **total** | **{_badInputs.Values.Sum()}** |");

        text.AppendLine().AppendLine("### Connections closed or refused, by cause and code").AppendLine();
        text.AppendLine("| where | code | cause | count |").AppendLine("| --- | --- | --- | ---: |");
        foreach (var ((kind, code, cause), count) in _closes.OrderBy(p => p.Key.Kind, StringComparer.Ordinal).ThenBy(p => p.Key.Code, StringComparer.Ordinal).ThenBy(p => p.Key.Cause, StringComparer.Ordinal))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {kind} | {code} | {cause} | {count} |");
        }

        text.AppendLine().AppendLine("### Messages").AppendLine();
        text.AppendLine("| scenario | runs | sent | acked | stored | delivered | lost | duplicated |").AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        var total = new MessageTally(0, 0, 0, 0, 0, 0, 0);
        foreach (var (scenario, t) in _messages.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {scenario} | {t.Runs} | {t.Sent} | {t.Acked} | {t.Stored} | {t.Delivered} | {t.Lost} | {t.Duplicated} |");
            total = new MessageTally(total.Runs + t.Runs, total.Sent + t.Sent, total.Acked + t.Acked, total.Stored + t.Stored, total.Delivered + t.Delivered, total.Lost + t.Lost, total.Duplicated + t.Duplicated);
        }
        text.AppendLine(CultureInfo.InvariantCulture, $"| **total** | **{total.Runs}** | **{total.Sent}** | **{total.Acked}** | **{total.Stored}** | **{total.Delivered}** | **{total.Lost}** | **{total.Duplicated}** |");
        return text.ToString();
    }

    private sealed record MessageTally(long Runs, long Sent, long Acked, long Stored, long Delivered, long Lost, long Duplicated);
}
