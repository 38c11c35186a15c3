namespace Chat.Gateway.Hosting;

/// <summary>
/// Log levels under <c>Logging</c> that the logging stack cannot read (<c>Verbose</c>, <c>Warn</c>). It throws at the
/// first one while the app is built, before the start-up validation, with a message that names the value but not the
/// key: the gateway ended with a stack trace and exit code 134. They are put aside before the build (the other levels
/// stand; the gateway does not start anyway), and the start-up validation names each with the other bad settings.
/// </summary>
internal sealed class UnreadableLogLevels(IReadOnlyList<string> reasons)
{
    private const string Levels = "Trace, Debug, Information, Warning, Error, Critical or None";

    public IReadOnlyList<string> Reasons { get; } = reasons;

    public static void PutAside(WebApplicationBuilder builder)
    {
        var unreadable = Find(builder.Configuration.GetSection("Logging")).ToList();
        if (unreadable.Count > 0)
        {
            // The logging stack skips an empty level, as if it were not set.
            builder.Configuration.AddInMemoryCollection(unreadable.Select(level => KeyValuePair.Create(level.Path, (string?)"")));
        }
        builder.Services.AddSingleton(new UnreadableLogLevels([.. unreadable.Select(level => level.Reason)]));
    }

    /// <summary>
    /// Where the logging stack reads levels, <c>Logging:LogLevel:*</c> and <c>Logging:&lt;provider&gt;:LogLevel:*</c>,
    /// the values it refuses: it takes a name of <see cref="LogLevel"/> in any case, or a number.
    /// </summary>
    internal static IEnumerable<(string Path, string Reason)> Find(IConfigurationSection logging)
    {
        foreach (var child in logging.GetChildren())
        {
            var levels = child.Key.Equals("LogLevel", StringComparison.OrdinalIgnoreCase) ? child : child.GetSection("LogLevel");
            foreach (var (category, value) in levels.AsEnumerable(makePathsRelative: true))
            {
                if (!string.IsNullOrEmpty(value) && !Enum.TryParse<LogLevel>(value, ignoreCase: true, out _))
                {
                    var path = $"{levels.Path}:{category}";
                    yield return (path, $"{path} is '{value}', which is not a log level ({Levels}).");
                }
            }
        }
    }
}
