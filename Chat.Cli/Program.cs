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
        return await CliApp.RunAsync(args, Console.In, Console.Out, Console.Error, Environment.GetEnvironmentVariable, interrupt.Token);
    }
}
