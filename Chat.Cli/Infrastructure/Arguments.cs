using System.Globalization;

namespace Chat.Cli.Infrastructure;

/// <summary>
/// A command's arguments: <c>--option value</c> (or <c>--option=value</c>), <c>--flag</c>, and positionals; after
/// <c>--</c>, only positionals. Unknown options and missing values are usage errors, so a typo never passes silently.
/// </summary>
internal sealed class Arguments
{
    private readonly Dictionary<string, string> _values;
    private readonly HashSet<string> _flags;

    private Arguments(Dictionary<string, string> values, HashSet<string> flags, List<string> positionals)
    {
        _values = values;
        _flags = flags;
        Positionals = positionals;
    }

    public IReadOnlyList<string> Positionals { get; }

    /// <summary>
    /// Whether <c>-h</c> or <c>--help</c> stands as an argument of its own before any <c>--</c>: then the command
    /// prints its help whatever else the line holds, even where an option expected its value
    /// (<c>--before --help</c>). After <c>--</c> it is a positional like any other.
    /// </summary>
    public static bool AsksForHelp(IEnumerable<string> args) => args.TakeWhile(a => a != "--").Any(a => a is "-h" or "--help");

    /// <summary>Parses <paramref name="args"/>; <paramref name="options"/> take a value, <paramref name="flags"/> do not.</summary>
    public static Arguments Parse(IEnumerable<string> args, IReadOnlyCollection<string> options, IReadOnlyCollection<string> flags)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var set = new HashSet<string>(StringComparer.Ordinal);
        var positionals = new List<string>();
        using var items = args.GetEnumerator();
        var onlyPositionals = false;
        while (items.MoveNext())
        {
            var arg = items.Current;
            if (onlyPositionals || !arg.StartsWith("--", StringComparison.Ordinal))
            {
                positionals.Add(arg);
                continue;
            }
            if (arg == "--")
            {
                onlyPositionals = true;
                continue;
            }
            var equals = arg.IndexOf('=', StringComparison.Ordinal);
            var name = equals < 0 ? arg : arg[..equals];
            if (flags.Contains(name))
            {
                if (equals >= 0)
                {
                    throw new UsageException($"{name} takes no value.");
                }
                set.Add(name);
            }
            else if (options.Contains(name))
            {
                string value;
                if (equals >= 0)
                {
                    value = arg[(equals + 1)..];
                }
                else if (!items.MoveNext())
                {
                    throw new UsageException($"{name} needs a value.");
                }
                else if (items.Current.StartsWith("--", StringComparison.Ordinal))
                {
                    // '--name --ttl 1h' forgot the name: taking '--ttl' for it would hide the mistake (and make '1h'
                    // a positional). A value that does start with two dashes is given with '='.
                    throw new UsageException($"{name} needs a value: '{items.Current}' looks like an option (write {name}={items.Current} if it is the value).");
                }
                else
                {
                    value = items.Current;
                }
                if (!values.TryAdd(name, value))
                {
                    throw new UsageException($"{name} is given twice.");
                }
            }
            else
            {
                throw new UsageException($"unknown option {name}.");
            }
        }
        return new Arguments(values, set, positionals);
    }

    public string? Value(string option) => _values.GetValueOrDefault(option);

    public bool Has(string flag) => _flags.Contains(flag);

    /// <summary>An integer option within bounds, or null when absent.</summary>
    public long? Integer(string option, long minimum, long maximum)
    {
        if (Value(option) is not { } text)
        {
            return null;
        }
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) || value < minimum || value > maximum)
        {
            throw new UsageException($"{option} '{text}' is not an integer from {minimum} to {maximum}.");
        }
        return value;
    }

    /// <summary>A duration option (90s, 30m, 1h, 7d or hh:mm:ss), or null when absent.</summary>
    public TimeSpan? Duration(string option)
    {
        if (Value(option) is not { } text)
        {
            return null;
        }
        return ParseDuration(text) ?? throw new UsageException($"{option} '{text}' is not a duration longer than zero such as 90s, 30m, 1h, 7d or 01:30:00 (a bare number has no unit and is refused).");
    }

    /// <summary>The positional at <paramref name="index"/> as a positive id.</summary>
    public long Id(int index, string what)
    {
        if (Positionals.Count <= index)
        {
            throw new UsageException($"the {what} is missing.");
        }
        var text = Positionals[index];
        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0
            ? id
            : throw new UsageException($"the {what} '{text}' is not a positive integer.");
    }

    /// <summary>Fails when more than <paramref name="count"/> positionals were given.</summary>
    public void AtMostPositionals(int count)
    {
        if (Positionals.Count > count)
        {
            throw new UsageException($"unexpected argument '{Positionals[count]}'.");
        }
    }

    internal static TimeSpan? ParseDuration(string value)
    {
        if (value.Length >= 2 && long.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var amount) && amount > 0)
        {
            try
            {
                TimeSpan? parsed = value[^1] switch
                {
                    's' => TimeSpan.FromSeconds(amount),
                    'm' => TimeSpan.FromMinutes(amount),
                    'h' => TimeSpan.FromHours(amount),
                    'd' => TimeSpan.FromDays(amount),
                    _ => null,
                };
                if (parsed is not null)
                {
                    return parsed;
                }
            }
            catch (Exception e) when (e is ArgumentOutOfRangeException or OverflowException)
            {
                return null; // longer than a TimeSpan holds
            }
        }
        // Only the hh:mm:ss form: TimeSpan reads a bare number as days, so '--ttl 90' would be 90 days.
        return value.Contains(':') && TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out var span) && span > TimeSpan.Zero ? span : null;
    }
}
