using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.Hosting;

/// <summary>
/// Keeps the host's own "Hosting failed to start" out of the log when <c>Program</c> states the failure itself: a
/// bad setting, the database, the listen address (<see cref="StartupFailure.Explain"/>), or a stop asked for while
/// starting. The operator then reads one line, not the same one three times under a <c>fail:</c> heading. Any
/// other failure to start is a bug, and the host still logs it with its stack trace; so is every other line of the
/// host's category (a background service that failed, a stop that failed).
/// </summary>
/// <remarks>
/// A filter by category and level would hide those too, and one in the providers would need a wrapper for each,
/// whose type the <c>Logging:Console:*</c> rules would no longer find: hence a factory that hands the host a logger
/// of its own.
/// </remarks>
internal sealed class StartFailureLog(ILoggerFactory factory, IServiceProvider services) : ILoggerFactory
{
    // Microsoft.Extensions.Hosting.Internal.Host, the category of the host's ILogger<Host>, and its event
    // HostedServiceStartupFaulted.
    private const string HostCategory = "Microsoft.Extensions.Hosting.Internal.Host";
    private const int StartupFaulted = 11;

    /// <summary>Puts this in the place of the registered <see cref="LoggerFactory"/>, with the same providers and rules.</summary>
    public static void Wrap(IServiceCollection services) =>
        services.Replace(ServiceDescriptor.Singleton<ILoggerFactory>(sp => new StartFailureLog(
            new LoggerFactory(
                sp.GetServices<ILoggerProvider>(),
                sp.GetRequiredService<IOptionsMonitor<LoggerFilterOptions>>(),
                sp.GetService<IOptions<LoggerFactoryOptions>>(),
                sp.GetService<IExternalScopeProvider>()),
            sp)));

    public ILogger CreateLogger(string categoryName) =>
        categoryName == HostCategory ? new HostLogger(factory.CreateLogger(categoryName), this) : factory.CreateLogger(categoryName);

    public void AddProvider(ILoggerProvider provider) => factory.AddProvider(provider);

    public void Dispose() => factory.Dispose();

    /// <summary>Whether <c>Program</c> prints this failure to start in a line of its own.</summary>
    private bool ProgramSays(Exception exception) =>
        StartupFailure.Explain(exception) is not null
        // Looked up when needed: the lifetime logs, so it cannot be resolved while its logger factory is made.
        || (exception is OperationCanceledException
            && services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested);

    private sealed class HostLogger(ILogger logger, StartFailureLog owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => logger.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => logger.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Id == StartupFaulted && exception is not null && owner.ProgramSays(exception))
            {
                return;
            }
            logger.Log(logLevel, eventId, state, exception, formatter);
        }
    }
}
