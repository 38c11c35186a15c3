using System.Globalization;
using System.Runtime.InteropServices;

namespace Bench.Runner.Machine;

/// <summary>What the results are measured on.</summary>
public sealed record MachineInfo(int Cores, string Memory, string CpuModel, string Kernel, string OpenFiles, string Runtime)
{
    public static MachineInfo Read()
    {
        var memory = "?";
        var cpu = "?";
        var kernel = RuntimeInformation.OSDescription;
        if (File.Exists("/proc/meminfo"))
        {
            var total = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
            var kilobytes = long.Parse(total["MemTotal:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            memory = string.Create(CultureInfo.InvariantCulture, $"{kilobytes / 1024.0 / 1024.0:F1} GiB");
        }
        if (File.Exists("/proc/cpuinfo"))
        {
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        }
        var files = ProcFs.Available ? ProcFs.OpenFileLimits(Environment.ProcessId) : ("?", "?");
        return new MachineInfo(
            Environment.ProcessorCount,
            memory,
            cpu,
            kernel,
            $"{files.Item1} soft / {files.Item2} hard",
            RuntimeInformation.FrameworkDescription);
    }
}
