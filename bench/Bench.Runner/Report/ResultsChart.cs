using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Legends;
using OxyPlot.Series;

namespace Bench.Runner.Report;

/// <summary>
/// Draws the results: per scenario, delivery p99 and deliveries per second against the offered rate, one line per
/// server, so the knees show at a glance. OxyPlot's SVG exporter is managed code only (no native drawing library).
/// </summary>
internal static partial class ResultsChart
{
    private const double PanelWidth = 620;
    private const double PanelHeight = 400;

    private static readonly Dictionary<string, OxyColor> Colors = new()
    {
        ["gateway"] = OxyColor.FromRgb(0x1f, 0x77, 0xb4),
        ["relay"] = OxyColor.FromRgb(0x7f, 0x7f, 0x7f),
        ["signalr"] = OxyColor.FromRgb(0xff, 0x7f, 0x0e),
    };

    /// <summary>Writes the chart; false when no scenario has steps to draw.</summary>
    public static bool Write(string path, RunRecord run)
    {
        var rows = new List<(PlotModel Latency, PlotModel Throughput)>();
        foreach (var (scenario, title) in new[]
                 {
                     (ScenarioNames.ChatMix, $"chat-mix, conversations of {run.Options.GroupSize}"),
                     (ScenarioNames.Rooms, $"rooms of {run.Options.RoomSize}"),
                 })
        {
            var servers = run.Servers.Where(s => s.Steps(scenario).Any()).ToList();
            if (servers.Count > 0)
            {
                rows.Add((LatencyPlot(servers, scenario, title), ThroughputPlot(servers, scenario, title)));
            }
        }
        if (rows.Count == 0)
        {
            return false;
        }

        var svg = new StringBuilder();
        svg.AppendLine(($"""<svg xmlns="http://www.w3.org/2000/svg" width="{2 * PanelWidth}" height="{rows.Count * PanelHeight}" viewBox="0 0 {2 * PanelWidth} {rows.Count * PanelHeight}">"""));
        svg.AppendLine(($"""<rect width="{2 * PanelWidth}" height="{rows.Count * PanelHeight}" fill="white"/>"""));
        for (var row = 0; row < rows.Count; row++)
        {
            Panel(svg, rows[row].Latency, 0, row * PanelHeight);
            Panel(svg, rows[row].Throughput, PanelWidth, row * PanelHeight);
        }
        svg.AppendLine("</svg>");
        File.WriteAllText(path, svg.ToString());
        return true;
    }

    private static void Panel(StringBuilder svg, PlotModel model, double x, double y)
    {
        var panel = SvgExporter.ExportToString(model, PanelWidth, PanelHeight, isDocument: false, textMeasurer: null, useVerticalTextAlignmentWorkaround: true);
        // The exporter writes an XML declaration even for a fragment, and numbers its clip paths from 1 in every
        // panel: drop the one, and give the others ids of their own within the combined document.
        panel = XmlDeclaration().Replace(panel, "");
        panel = ClipPathId().Replace(panel, $"p{x:F0}-{y:F0}-$0");
        svg.AppendLine($"""<g transform="translate({x},{y})">""");
        svg.AppendLine(panel);
        svg.AppendLine("</g>");
    }

    [GeneratedRegex(@"<\?xml[^>]*\?>\s*")]
    private static partial Regex XmlDeclaration();

    [GeneratedRegex(@"(?<=id=""|url\(#)clipPath\d+")]
    private static partial Regex ClipPathId();

    private static PlotModel LatencyPlot(IEnumerable<ServerResults> servers, string scenario, string title)
    {
        var model = NewModel($"Delivery p99, {title}");
        model.Axes.Add(RateAxis());
        model.Axes.Add(new LogarithmicAxis
        {
            Position = AxisPosition.Left,
            Title = "delivery p99 (ms, log)",
            MajorGridlineStyle = LineStyle.Solid,
            MajorGridlineColor = OxyColor.FromAColor(40, OxyColors.Black),
        });
        var limit = new LineSeries { Title = "50 ms", Color = OxyColors.Red, LineStyle = LineStyle.Dash, StrokeThickness = 1 };
        var rates = servers.SelectMany(s => s.Steps(scenario)).Select(s => s.OfferedRate).ToList();
        limit.Points.Add(new DataPoint(rates.Min(), Targets.P99LimitMs));
        limit.Points.Add(new DataPoint(rates.Max(), Targets.P99LimitMs));
        model.Series.Add(limit);
        foreach (var server in servers)
        {
            model.Series.Add(Line(server.Server, server.Steps(scenario)
                .Where(s => !double.IsNaN(s.Window.Delivery.P99))
                .Select(s => new DataPoint(s.OfferedRate, Math.Max(0.01, s.Window.Delivery.P99)))));
        }
        return model;
    }

    private static PlotModel ThroughputPlot(IEnumerable<ServerResults> servers, string scenario, string title)
    {
        var model = NewModel($"Deliveries per second, {title}");
        model.Axes.Add(RateAxis());
        model.Axes.Add(new LinearAxis
        {
            Position = AxisPosition.Left,
            Title = "delivered/s",
            Minimum = 0,
            MajorGridlineStyle = LineStyle.Solid,
            MajorGridlineColor = OxyColor.FromAColor(40, OxyColors.Black),
            StringFormat = "#,0",
        });
        var steps = servers.SelectMany(s => s.Steps(scenario)).ToList();
        var ideal = new LineSeries { Title = "offered × (members − 1)", Color = OxyColors.Black, LineStyle = LineStyle.Dot, StrokeThickness = 1 };
        foreach (var rate in steps.Select(s => s.OfferedRate).Distinct().Order())
        {
            ideal.Points.Add(new DataPoint(rate, rate * (steps[0].GroupSize - 1)));
        }
        model.Series.Add(ideal);
        foreach (var server in servers)
        {
            model.Series.Add(Line(server.Server, server.Steps(scenario).Select(s => new DataPoint(s.OfferedRate, s.DeliveredPerSecond))));
        }
        return model;
    }

    private static PlotModel NewModel(string title)
    {
        var model = new PlotModel
        {
            Title = title,
            TitleFontSize = 14,
            DefaultFont = "Arial",
            Background = OxyColors.White,
            PlotAreaBorderColor = OxyColors.Gray,
        };
        model.Legends.Add(new Legend { LegendPosition = LegendPosition.TopLeft, LegendBackground = OxyColor.FromAColor(220, OxyColors.White) });
        return model;
    }

    private static LogarithmicAxis RateAxis() => new()
    {
        Position = AxisPosition.Bottom,
        Title = "offered rate (msg/s, log)",
        Base = 2,
        MajorGridlineStyle = LineStyle.Solid,
        MajorGridlineColor = OxyColor.FromAColor(40, OxyColors.Black),
        StringFormat = "#,0",
    };

    private static LineSeries Line(string server, IEnumerable<DataPoint> points)
    {
        var color = Colors.GetValueOrDefault(server, OxyColors.Green);
        var series = new LineSeries
        {
            Title = server,
            Color = color,
            StrokeThickness = 2,
            MarkerType = MarkerType.Circle,
            MarkerSize = 4,
            MarkerFill = color,
        };
        series.Points.AddRange(points);
        return series;
    }

}
