using System.Reflection;
using Chat.Core.Options;
using Chat.Gateway.Metrics;

namespace Chat.Gateway.Hosting;

/// <summary>
/// Warns at start of each setting under <c>Chat:</c> that no option reads. The configuration binder ignores a key it
/// has no property for without a word, so a misspelt one (<c>Chat__Limits__MaxFrameByte</c>) would leave its
/// default in force while the operator believes it changed.
/// </summary>
public static partial class UnknownSettings
{
    internal static readonly (string Section, Type Options)[] Sections =
    [
        (ChatAuthOptions.Section, typeof(ChatAuthOptions)),
        (ChatDatabaseOptions.Section, typeof(ChatDatabaseOptions)),
        (ChatLimitsOptions.Section, typeof(ChatLimitsOptions)),
        (ChatSecurityOptions.Section, typeof(ChatSecurityOptions)),
        (ChatWriterOptions.Section, typeof(ChatWriterOptions)),
        (ChatShutdownOptions.Section, typeof(ChatShutdownOptions)),
        (ChatMetricsOptions.Section, typeof(ChatMetricsOptions)),
    ];

    /// <summary>The paths of the settings under <c>Chat:</c> that no option has a property for.</summary>
    public static IEnumerable<string> Find(IConfiguration configuration)
    {
        foreach (var section in configuration.GetSection("Chat").GetChildren())
        {
            var options = Sections.FirstOrDefault(known => string.Equals(known.Section, section.Path, StringComparison.OrdinalIgnoreCase)).Options;
            if (options is null)
            {
                yield return section.Path;
                continue;
            }
            var properties = options.GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
            foreach (var setting in section.GetChildren().Where(setting => !properties.Contains(setting.Key)))
            {
                yield return setting.Path;
            }
        }
    }

    public static WebApplication WarnOfUnknownSettings(this WebApplication app)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(UnknownSettings));
        foreach (var path in Find(app.Configuration))
        {
            UnknownSetting(logger, path);
        }
        return app;
    }

    [LoggerMessage(1, LogLevel.Warning, "The setting {Path} is not one the gateway reads, and is ignored: is it misspelt? The settings are listed in the README")]
    private static partial void UnknownSetting(ILogger logger, string path);
}
