using System.ComponentModel;
using System.Globalization;
using System.Net;
using System.Reflection;
using System.Text.RegularExpressions;
using Chat.Core.Options;
using Chat.Gateway.Hosting;
using Chat.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Chat.Tests.Gateway;

/// <summary>
/// The README's configuration and metrics tables, which operators configure the gateway and write their alerts
/// from, held to the code: every key is a setting with the documented default and range, every setting is
/// documented, and every series of the table is in a real scrape with its type and label, and the other way round.
/// </summary>
public sealed partial class ReadmeTablesTests
{
    private const string Readme = "README.md";

    /// <summary>A row of the configuration table.</summary>
    public sealed record DocumentedSetting(int Line, string Key, string Default, string Meaning)
    {
        public override string ToString() => $"{Readme}:{Line} {Key}";
    }

    /// <summary>A range a row of the configuration table states, as configuration values of its setting.</summary>
    public sealed record DocumentedRange(DocumentedSetting Setting, string Below, string Lower, string Upper, string Above)
    {
        public override string ToString() => $"{Setting} {Lower} to {Upper}";
    }

    private static readonly IReadOnlyList<MarkdownTable> Tables = MarkdownTables.Read(Readme);

    private static readonly IReadOnlyList<DocumentedSetting> Settings =
        [.. Table("key", "default", "meaning").Rows.Select(row => new DocumentedSetting(row.Line, MarkdownTables.Code(row.Cells[0]).Single(), row.Cells[1], row.Cells[2]))];

    /// <summary>Every setting the binder fills: a public property with a public setter of an options class, by key.</summary>
    private static readonly IReadOnlyDictionary<string, PropertyInfo> Options = UnknownSettings.Sections
        .SelectMany(section => section.Options.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(property => property.SetMethod?.IsPublic == true)
            .Select(property => KeyValuePair.Create($"{section.Section}:{property.Name}", property)))
        .ToDictionary(StringComparer.Ordinal);

    private static MarkdownTable Table(params string[] header)
    {
        var tables = Tables.Where(table => table.Header.SequenceEqual(header)).ToList();
        Assert.That(tables, Has.Count.EqualTo(1), $"tables headed | {string.Join(" | ", header)} | in README.md");
        return tables[0];
    }

    private static IEnumerable<DocumentedRange> Ranges => Settings.Select(Range).OfType<DocumentedRange>();

    // ConnectionStrings:Chat is read as a connection string, not bound to an options class.
    [Test]
    public void Every_documented_setting_is_a_setting_of_an_options_class()
    {
        Assert.That(Settings, Is.Not.Empty);
        Assert.That(Settings.Where(s => !Options.ContainsKey(s.Key) && s.Key != "ConnectionStrings:Chat").Select(s => s.ToString()), Is.Empty,
            "documented, but no options class has the setting");
    }

    [Test]
    public void Every_setting_of_every_options_class_is_documented()
    {
        Assert.That(Options.Keys.Except(Settings.Select(s => s.Key)), Is.Empty, "settings missing from README.md's configuration table");
        Assert.That(Settings.GroupBy(s => s.Key).Where(g => g.Count() > 1).Select(g => g.Key), Is.Empty, "documented twice");
    }

    [Test]
    public void Every_documented_default_is_the_settings_default()
    {
        var wrong = Settings.Where(s => Options.ContainsKey(s.Key)).Select(DefaultMismatch).OfType<string>();

        Assert.That(wrong, Is.Empty);
    }

    // A bound the options check that the table leaves out is one an operator meets only at start.
    [Test]
    public void Every_setting_validated_against_a_range_states_its_range()
    {
        var ranged = Options.Where(o => o.Value.GetCustomAttribute<System.ComponentModel.DataAnnotations.RangeAttribute>() is not null).Select(o => o.Key);
        var stated = Ranges.Select(r => r.Setting.Key).Append(SendQueueMaxBytes);

        Assert.That(Ranges.Count(), Is.GreaterThan(20));
        Assert.That(ranged.Except(stated), Is.Empty, "validated against a range that README.md's configuration table does not state");
    }

    public static IEnumerable<TestCaseData> RangeCases() =>
        Ranges.Select(range => new TestCaseData(range).SetArgDisplayNames($"{range.Setting.Key} {range.Lower} to {range.Upper}"));

    [TestCaseSource(nameof(RangeCases))]
    public void A_value_just_outside_a_documented_range_stops_the_gateway(DocumentedRange range)
    {
        var key = range.Setting.Key;
        foreach (var outside in new[] { range.Below, range.Above })
        {
            var failure = StartupValidationTests.StartFailure(new() { [key] = outside });

            // "must": another setting's message may mention this key ("plus Chat:Limits:CloseTimeout (...)").
            Assert.That(StartupValidationTests.AllMessages(failure), Does.Contain($"{key} must"), $"{key}={outside}");
        }
    }

    [Test]
    public async Task The_gateway_starts_with_every_setting_at_the_lower_end_of_its_documented_range()
    {
        var settings = Ranges.ToDictionary(r => r.Setting.Key, r => (string?)r.Lower);
        settings[SendQueueMaxBytes] = SendQueueMinimum(int.Parse(settings[MaxFrameBytes]!, CultureInfo.InvariantCulture)).ToString(CultureInfo.InvariantCulture);

        await using var gateway = new TestGateway(settings).Start();
        using var http = gateway.CreateHttpClient();

        Assert.That((await http.GetAsync("/health/live")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    [Test]
    public async Task The_gateway_starts_with_every_setting_at_the_upper_end_of_its_documented_range()
    {
        var settings = Ranges.ToDictionary(r => r.Setting.Key, r => (string?)r.Upper);
        settings[SendQueueMaxBytes] = SendQueueMinimum(int.Parse(settings[MaxFrameBytes]!, CultureInfo.InvariantCulture)).ToString(CultureInfo.InvariantCulture);
        // The README's rule for Chat:Shutdown:DrainDelay: with CloseTimeout it must fit in the host's shutdown timeout.
        var stop = TimeSpan.Parse(settings["Chat:Shutdown:DrainDelay"]!, CultureInfo.InvariantCulture) + TimeSpan.Parse(settings["Chat:Limits:CloseTimeout"]!, CultureInfo.InvariantCulture);
        settings["shutdownTimeoutSeconds"] = ((int)stop.TotalSeconds + 1).ToString(CultureInfo.InvariantCulture);

        // The drain (ShutdownTests) would hold this gateway's stop for the five minutes these settings ask of it.
        await using var gateway = new TestGateway(settings, services: services => services.Remove(services.Single(d => d.ImplementationType == typeof(ShutdownDrain)))).Start();
        using var http = gateway.CreateHttpClient();

        Assert.That((await http.GetAsync("/health/live")).StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    // The one bound the table states as a rule: "at least 2 × (`MaxFrameBytes` + 4096)". The two starts above
    // show that its minimum is accepted; this that one byte less is not.
    [Test]
    public void A_send_queue_one_byte_below_the_documented_minimum_stops_the_gateway()
    {
        var below = SendQueueMinimum(new ChatLimitsOptions().MaxFrameBytes) - 1;

        var failure = StartupValidationTests.StartFailure(new() { [SendQueueMaxBytes] = below.ToString(CultureInfo.InvariantCulture) });

        Assert.That(StartupValidationTests.AllMessages(failure), Does.Contain(SendQueueMaxBytes));
    }

    /// <summary>
    /// A family of metrics (a histogram's name without <c>_bucket</c>), with its type and the names of its labels; in a
    /// scrape also the label values its samples carry, in the README the row's text that says what it counts.
    /// </summary>
    private sealed record Family(string Type, SortedSet<string> Labels, SortedSet<string> Values, string What = "");

    [Test]
    public async Task Every_series_of_the_metrics_table_is_in_a_scrape_with_its_type_and_labels_and_every_family_of_the_scrape_is_documented()
    {
        var documented = DocumentedMetrics();
        await using var gateway = new TestGateway().Start();
        using var http = gateway.CreateHttpClient();
        var atStart = Scrape(await http.GetStringAsync("/metrics"));
        var (alice, bob) = (await gateway.CreateUserAsync(), await gateway.CreateUserAsync());
        var conversation = await gateway.CreateConversationAsync(alice, bob);
        await using (var a = await gateway.ConnectAsync(alice))
        await using (var b = await gateway.ConnectAsync(bob))
        {
            var ack = await a.SendMessageAsync(conversation, "counted");
            await b.NextAsync(f => f.Type() == "message" && f.Long("messageId") == ack.Long("messageId"));
            await b.SendTextAsync($$"""{"type":"read","conversationId":{{conversation}},"messageId":{{ack.Long("messageId")}}}""");
            await a.NextAsync("read");
        }
        Assert.That(await Handshake.StatusAsync(gateway.WebSocketAddress, token: null), Is.EqualTo(HttpStatusCode.Unauthorized));
        // A retry needs a database fault: this is what the retry pipeline reports when it meets one.
        ((Chat.Data.IDatabaseRetryObserver)gateway.Services.GetRequiredService<Chat.Core.Metrics.ChatMetrics>()).Retrying("57P01");
        var scraped = Scrape(await http.GetStringAsync("/metrics"));

        Assert.Multiple(() =>
        {
            Assert.That(documented.Keys.Except(scraped.Keys), Is.Empty, "documented, but not in the scrape");
            Assert.That(scraped.Keys.Except(documented.Keys), Is.Empty, "in the scrape, but not in README.md's metrics table");
            foreach (var (name, family) in documented.Where(d => scraped.ContainsKey(d.Key)))
            {
                Assert.That(scraped[name].Type, Is.EqualTo(family.Type), $"the type of {name}");
                Assert.That(scraped[name].Labels, Is.EquivalentTo(family.Labels), $"the labels of {name}");
            }
            // Written from the start so that an alert on one has data: an alert is written from the README's list.
            foreach (var (name, family) in documented.Where(d => atStart.ContainsKey(d.Key)))
            {
                Assert.That(atStart[name].Values.Where(value => !Regex.IsMatch(family.What, $@"(?<!\w){Regex.Escape(value)}(?!\w)")), Is.Empty,
                    $"values of {name} that the gateway writes from the start and README.md's row does not name");
            }
        });
    }

    /// <summary>
    /// The metrics table by family: a row names one or more series, with their labels in braces
    /// (<c>chat_connections_closed_total{reason}</c>), and gives one type for all of them or one each, in order.
    /// </summary>
    private static Dictionary<string, Family> DocumentedMetrics()
    {
        var families = new Dictionary<string, Family>(StringComparer.Ordinal);
        foreach (var row in Table("series", "type", "what").Rows)
        {
            var series = MarkdownTables.Code(row.Cells[0]).ToList();
            var types = row.Cells[1].Split(',', StringSplitOptions.TrimEntries);
            Assert.That(types, Has.Length.EqualTo(1).Or.Length.EqualTo(series.Count), $"README.md:{row.Line}: one type, or one per series");
            for (var i = 0; i < series.Count; i++)
            {
                var name = DocumentedSeries().Match(series[i]);
                Assert.That(name.Success, Is.True, $"README.md:{row.Line}: {series[i]} is a series name with its labels in braces");
                var labels = name.Groups[2].Success ? name.Groups[2].Value.Split(',', StringSplitOptions.TrimEntries) : [];
                Assert.That(families.TryAdd(name.Groups[1].Value, new Family(types[types.Length == 1 ? 0 : i], [.. labels], [], row.Cells[2])), Is.True, $"{series[i]} documented twice");
            }
        }
        return families;
    }

    /// <summary>The families of a Prometheus text exposition, with the labels their samples carry (a histogram's <c>le</c> aside).</summary>
    private static Dictionary<string, Family> Scrape(string text)
    {
        var families = new Dictionary<string, Family>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (TypeLine().Match(line) is { Success: true } type)
            {
                families.Add(type.Groups[1].Value, new Family(type.Groups[2].Value, [], []));
            }
            else if (!line.StartsWith('#') && SampleLine().Match(line) is { Success: true } sample)
            {
                var name = sample.Groups[1].Value;
                var family = families.GetValueOrDefault(name) ?? families[HistogramSuffix().Replace(name, "")];
                foreach (var label in Label().Matches(sample.Groups[2].Value).Where(label => label.Groups[1].Value != "le"))
                {
                    family.Labels.Add(label.Groups[1].Value);
                    family.Values.Add(label.Groups[2].Value);
                }
            }
        }
        return families;
    }

    private const string MaxFrameBytes = "Chat:Limits:MaxFrameBytes";
    private const string SendQueueMaxBytes = "Chat:Limits:SendQueueMaxBytes";

    private static int SendQueueMinimum(int maxFrameBytes)
    {
        var meaning = Settings.Single(s => s.Key == SendQueueMaxBytes).Meaning;
        var rule = SendQueueRule().Match(meaning);
        Assert.That(rule.Success, Is.True, $"README.md states the minimum of {SendQueueMaxBytes} as 2 × (`MaxFrameBytes` + N): {meaning}");
        return 2 * (maxFrameBytes + int.Parse(rule.Groups[1].Value, CultureInfo.InvariantCulture));
    }

    /// <summary>Why a row's default is not the setting's, or null when it is.</summary>
    private static string? DefaultMismatch(DocumentedSetting setting)
    {
        var property = Options[setting.Key];
        var actual = property.GetValue(Activator.CreateInstance(property.DeclaringType!));
        var shown = actual switch { null => "null", TimeSpan t => t.ToString("c"), string[] list => $"[{string.Join(", ", list)}]", _ => Convert.ToString(actual, CultureInfo.InvariantCulture) };
        bool matches;
        if (CodeOnly().Match(setting.Default) is { Success: true } code)
        {
            try
            {
                matches = Equals(Value(code.Groups[1].Value, property.PropertyType), actual);
            }
            catch (Exception e) when (e is FormatException or NotSupportedException or ArgumentException or OverflowException)
            {
                matches = false;
            }
        }
        else
        {
            // Words, not a value: "empty" for an empty list; otherwise the setting has no value of its own
            // ("unset", "(required)") and the words say what that means.
            matches = setting.Default == "empty" ? actual is Array { Length: 0 } : actual is null;
        }
        return matches ? null : $"{setting}: documented default {setting.Default}, the code's is {shown}";
    }

    /// <summary>A value as the README writes it (<c>00:00:10</c>, <c>10000</c>, <c>1024 * 1024</c>), read as the binder reads it.</summary>
    private static object? Value(string text, Type type)
    {
        if (Product().IsMatch(text) && (type == typeof(int) || type == typeof(double)))
        {
            var product = text.Split(['*', '×']).Aggregate(1L, (total, factor) => checked(total * long.Parse(factor.Trim(), CultureInfo.InvariantCulture)));
            return Convert.ChangeType(product, type, CultureInfo.InvariantCulture);
        }
        return TypeDescriptor.GetConverter(type).ConvertFromInvariantString(text);
    }

    /// <summary>The first "low to high" of a row's meaning, as values of its setting and one step past each.</summary>
    private static DocumentedRange? Range(DocumentedSetting setting)
    {
        if (!Options.TryGetValue(setting.Key, out var property) || RangeText().Match(setting.Meaning) is not { Success: true } range)
        {
            return null;
        }
        var type = property.PropertyType;
        var (low, high) = (Quantity(range.Groups["low"].Value, range.Groups["lowUnit"].Value, type, setting), Quantity(range.Groups["high"].Value, range.Groups["highUnit"].Value, type, setting));
        return type switch
        {
            _ when type == typeof(int) => new DocumentedRange(setting, Text((int)low - 1), Text((int)low), Text((int)high), Text((int)high + 1)),
            _ when type == typeof(double) => new DocumentedRange(setting, Text((double)low - Step((double)low)), Text((double)low), Text((double)high), Text((double)high + Step((double)high))),
            _ => new DocumentedRange(setting, Text((TimeSpan)low - TimeSpan.FromMilliseconds(1)), Text((TimeSpan)low), Text((TimeSpan)high), Text((TimeSpan)high + TimeSpan.FromMilliseconds(1))),
        };

        static double Step(double bound) => bound == 0 ? 0.001 : Math.Abs(bound) / 1000;
        static string Text(object value) => value switch { TimeSpan t => t.ToString("c"), double d => d.ToString("R", CultureInfo.InvariantCulture), _ => Convert.ToString(value, CultureInfo.InvariantCulture)! };
    }

    private static object Quantity(string number, string unit, Type type, DocumentedSetting setting)
    {
        var value = decimal.Parse(number.Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);
        object? quantity = (Type: type, Unit: unit) switch
        {
            { Type: var t, Unit: "" } when t == typeof(int) => (int)value,
            { Type: var t, Unit: "KiB" } when t == typeof(int) => (int)(value * 1024),
            { Type: var t, Unit: "MiB" } when t == typeof(int) => (int)(value * 1024 * 1024),
            { Type: var t, Unit: "" } when t == typeof(double) => (double)value,
            { Type: var t, Unit: "" } when t == typeof(TimeSpan) && value == 0 => TimeSpan.Zero,
            { Type: var t, Unit: "s" } when t == typeof(TimeSpan) => TimeSpan.FromSeconds((double)value),
            { Type: var t, Unit: "min" or "minutes" } when t == typeof(TimeSpan) => TimeSpan.FromMinutes((double)value),
            { Type: var t, Unit: "h" } when t == typeof(TimeSpan) => TimeSpan.FromHours((double)value),
            _ => null,
        };
        return quantity ?? throw new AssertionException($"{setting}: \"{number} {unit}\" is not a bound of a {type.Name} setting (a duration needs its unit: s, min, h)");
    }

    [GeneratedRegex(@"^`([^`]+)`$")]
    private static partial Regex CodeOnly();

    [GeneratedRegex(@"^\d+(\s*[*×]\s*\d+)+$")]
    private static partial Regex Product();

    [GeneratedRegex(@"(?<![\w.,])(?<low>\d[\d,]*(?:\.\d+)?)(?:\s*(?<lowUnit>minutes|min|s|h|KiB|MiB))?\s+to\s+(?<high>\d[\d,]*(?:\.\d+)?)(?:\s*(?<highUnit>minutes|min|s|h|KiB|MiB))?\b")]
    private static partial Regex RangeText();

    [GeneratedRegex(@"^([a-z_]+)(?:\{([a-z_, ]+)\})?$")]
    private static partial Regex DocumentedSeries();

    [GeneratedRegex("^# TYPE ([a-z_]+) ([a-z]+)$")]
    private static partial Regex TypeLine();

    [GeneratedRegex(@"^([a-z_]+)(\{[^}]*\})? ")]
    private static partial Regex SampleLine();

    [GeneratedRegex("_(bucket|sum|count)$")]
    private static partial Regex HistogramSuffix();

    [GeneratedRegex(@"([a-z_]+)=""([^""]*)""")]
    private static partial Regex Label();

    [GeneratedRegex(@"at least 2 × \(`MaxFrameBytes` \+ (\d+)\)")]
    private static partial Regex SendQueueRule();
}
