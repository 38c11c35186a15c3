using System.Globalization;

namespace Bench.Runner.Machine;

/// <summary>
/// Reads CPU time and memory from Linux's /proc, from outside the processes measured, so that every server is
/// measured the same way and the generator measures itself like the rest.
/// </summary>
internal static class ProcFs
{
    /// <summary>Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux).</summary>
    private const double TicksPerSecond = 100;

    public static bool Available => File.Exists("/proc/self/stat");

    /// <summary>CPU seconds (user + system) a process has used; with its reaped children when asked.</summary>
    public static double ProcessCpuSeconds(int pid, bool withReapedChildren = false)
    {
        var fields = StatFields(pid);
        if (fields is null)
        {
            return 0;
        }
        // Fields after the command name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17), 1-based.
        var ticks = Field(fields, 14) + Field(fields, 15);
        if (withReapedChildren)
        {
            ticks += Field(fields, 16) + Field(fields, 17);
        }
        return ticks / TicksPerSecond;
    }

    /// <summary>
    /// CPU seconds of a process and every live child, plus the children it has already reaped: the whole of a
    /// PostgreSQL cluster when given the postmaster, backends that came and went included.
    /// </summary>
    public static double TreeCpuSeconds(int parent)
    {
        var total = ProcessCpuSeconds(parent, withReapedChildren: true);
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && pid != parent
                && StatFields(pid) is { } fields
                && (int)Field(fields, 4) == parent)
            {
                total += (Field(fields, 14) + Field(fields, 15)) / TicksPerSecond;
            }
        }
        return total;
    }

    public static int? ParentOf(int pid) => StatFields(pid) is { } fields ? (int)Field(fields, 4) : null;

    public static string? CommandOf(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Busy CPU seconds of the whole machine, all cores together (everything but idle and I/O wait).</summary>
    public static double MachineBusySeconds()
    {
        var line = File.ReadLines("/proc/stat").First();
        var values = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        // user nice system idle iowait irq softirq steal [guest guest_nice, already counted in user and nice]
        var busy = values[0] + values[1] + values[2] + values[5] + values[6] + (values.Length > 7 ? values[7] : 0);
        return busy / TicksPerSecond;
    }

    /// <summary>Resident set size in bytes, from VmRSS.</summary>
    public static long ResidentBytes(int pid) => StatusKilobytes(pid, "VmRSS:") * 1024;

    /// <summary>Open file descriptors of a process (sockets included).</summary>
    public static int OpenFiles(int pid)
    {
        try
        {
            return Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Count();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>The soft and hard limits on open files of a process, from /proc/PID/limits.</summary>
    public static (string Soft, string Hard) OpenFileLimits(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/limits").FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        var parts = line?["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts is { Length: >= 2 } ? (parts[0], parts[1]) : ("?", "?");
    }

    private static long StatusKilobytes(int pid, string key)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    // The fields of /proc/PID/stat after "(comm)", which may itself hold spaces and parentheses; index 0 is field 3.
    private static string[]? StatFields(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static double Field(string[] fieldsFromState, int field) =>
        double.Parse(fieldsFromState[field - 3], CultureInfo.InvariantCulture);
}
