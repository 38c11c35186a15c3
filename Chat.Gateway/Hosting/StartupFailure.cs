using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.Hosting;

/// <summary>
/// A start-up failure whose message already says which setting (or which database, through which key) is at fault,
/// in a sentence an operator can act on: it is shown as it is, without a stack trace.
/// </summary>
public sealed class GatewayStartupException(string message, Exception? inner = null) : Exception(message, inner)
{
    // The host logs a failed start with the exception's text; a stack trace there would bury the one line that matters.
    public override string ToString() => $"{GetType().FullName}: {Message}";
}

/// <summary>
/// Turns what stops the gateway from starting because of its configuration (or its database) into one line naming
/// the key, so that <c>Program</c> prints it and exits with 1 instead of crashing with a stack trace (exit 134).
/// </summary>
public static partial class StartupFailure
{
    /// <summary>
    /// Validates every option registered with <c>ValidateOnStart</c> now, ahead of the host, which would log the
    /// failure with a stack trace before <c>Program</c> gets to say it in one line.
    /// </summary>
    public static WebApplication ValidateOptions(this WebApplication app)
    {
        // The binder throws at the first value it cannot convert ("abc" for a number), and the start-up validation
        // stops there: the other bad settings would be named only once that one is fixed. Such values are put aside
        // (their defaults stand in, and the gateway does not start anyway), so that one line names them all. A null
        // would not do: the binder reads it as the type's zero, which the range checks would then refuse as well.
        var unconvertible = Unconvertible(app.Configuration).ToList();
        if (unconvertible.Count > 0 && app.Configuration is IConfigurationBuilder configuration)
        {
            configuration.AddInMemoryCollection(unconvertible.Select(setting => KeyValuePair.Create(setting.Path, setting.Default)));
        }
        var failures = unconvertible.Select(setting => setting.Reason)
            .Concat(app.Services.GetService<UnreadableLogLevels>()?.Reasons ?? [])
            .Concat(HostSettingFailures(app.Configuration))
            .ToList();
        try
        {
            app.Services.GetService<IStartupValidator>()?.Validate();
        }
        catch (Exception e) when (failures.Count > 0 && Reasons(e) is { } reasons)
        {
            failures.AddRange(reasons);
        }
        if (failures.Count > 0)
        {
            throw new GatewayStartupException(string.Join(" ", failures.Distinct()));
        }
        return app;
    }

    /// <summary>The settings of the gateway's options whose value the configuration binder cannot convert to the property's type.</summary>
    internal static IEnumerable<(string Path, string Reason, string? Default)> Unconvertible(IConfiguration configuration)
    {
        foreach (var (section, options) in UnknownSettings.Sections)
        {
            var defaults = Activator.CreateInstance(options);
            foreach (var property in options.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                // Text and lists of text take any value; the numbers, durations and switches are what fail.
                var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
                var path = $"{section}:{property.Name}";
                if (!type.IsValueType || configuration[path] is not { } value)
                {
                    continue;
                }
                string? reason = null;
                try
                {
                    configuration.GetValue(type, path);
                }
                catch (InvalidOperationException)
                {
                    reason = $"{path} is '{value}', which is not {Expected(type)}.";
                }
                if (reason is not null)
                {
                    yield return (path, reason, Convert.ToString(property.GetValue(defaults), CultureInfo.InvariantCulture));
                }
            }
        }
    }

    /// <summary>
    /// The host's own settings that the gateway documents. The host reads <c>shutdownTimeoutSeconds</c> only when it is
    /// a whole number of seconds and keeps its default (30 s) without a word otherwise, so "abc" or "45s" would leave an
    /// operator believing the stop has the time they gave it.
    /// </summary>
    private static IEnumerable<string> HostSettingFailures(IConfiguration configuration)
    {
        const string ShutdownTimeout = "shutdownTimeoutSeconds";
        // As HostOptions reads it: digits only, within an int.
        if (configuration[ShutdownTimeout] is { Length: > 0 } value
            && !int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            yield return $"{ShutdownTimeout} is '{value}', which is not a whole number of seconds.";
        }
    }

    private static string Expected(Type type) =>
        type == typeof(int) ? "a whole number"
        : type == typeof(double) ? "a number"
        : type == typeof(bool) ? "true or false"
        : type == typeof(TimeSpan) ? "a duration (hh:mm:ss)"
        : $"a {type.Name}";

    /// <summary>The line to print for a failure caused by the configuration or the database; null for a bug, which should crash as one.</summary>
    public static string? Explain(Exception exception) =>
        // Distinct: a validator that reads another section's options (the shutdown's reads the limits) fails with
        // that section's failure, which the section's own validation reports too.
        Reasons(exception) is { } reasons ? string.Join(" ", reasons.Distinct()) : null;

    private static IEnumerable<string>? Reasons(Exception exception) => exception switch
    {
        GatewayStartupException e => [e.Message],
        OptionsValidationException e => e.Failures.Select(Unwrap),
        AggregateException e when e.InnerExceptions.Select(Reasons).ToList() is var reasons && reasons.All(r => r is not null) =>
            reasons.SelectMany(r => r!),
        // The configuration binder: "Failed to convert configuration value 'abc' at 'Chat:Limits:KeepAliveInterval' to type 'System.TimeSpan'."
        InvalidOperationException { InnerException: not null } e when ConversionFailure().IsMatch(e.Message) => [e.Message],
        _ => null,
    };

    // ValidateDataAnnotations wraps each message, which already names the key, in its own sentence about the class.
    private static string Unwrap(string failure) =>
        DataAnnotationFailure().Match(failure) is { Success: true } match ? match.Groups[1].Value : failure;

    [GeneratedRegex("^DataAnnotation validation failed for '[^']*' members: '[^']*' with the error: '(.*)'\\.$", RegexOptions.Singleline)]
    private static partial Regex DataAnnotationFailure();

    [GeneratedRegex("^Failed to convert configuration value .* at '[^']+' to type")]
    private static partial Regex ConversionFailure();
}
