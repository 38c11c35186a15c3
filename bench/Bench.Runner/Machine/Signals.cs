using System.Runtime.InteropServices;

namespace Bench.Runner.Machine;

internal static class Signals
{
    private const int SigTerm = 15;

    /// <summary>Asks a process to stop gracefully (SIGTERM), as a service manager would; false when that is not possible here.</summary>
    public static bool Terminate(int pid) => (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()) && kill(pid, SigTerm) == 0;

    // .NET's Process.Kill sends SIGKILL only; a graceful stop needs SIGTERM. A blittable call: no marshalling needed.
#pragma warning disable SYSLIB1054
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int kill(int pid, int signal);
#pragma warning restore SYSLIB1054
}
