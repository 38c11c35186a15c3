namespace Chat.Cli;

internal static class EntryPoint
{
    private static async Task<int> Main(string[] args)
    {
        // Ctrl-C cancels the command (connect closes its socket, smoke stops) instead of killing the process mid-write.
        using var interrupt = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = !interrupt.IsCancellationRequested;
            interrupt.Cancel();
        };
        // So does SIGTERM (a closed terminal window, `kill`, a process manager): connect still closes its socket.
        using var terminate = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context =>
        {
            context.Cancel = !interrupt.IsCancellationRequested;
            interrupt.Cancel();
        });
        return await CliApp.RunAsync(args, Console.In, Console.Out, Console.Error, Environment.GetEnvironmentVariable, interrupt.Token);
    }
}
