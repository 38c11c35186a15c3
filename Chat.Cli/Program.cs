namespace Chat.Cli;

internal static class EntryPoint
{
    private static Task<int> Main(string[] args) =>
        CliApp.RunAsync(args, Console.Out, Console.Error, Environment.GetEnvironmentVariable);
}
