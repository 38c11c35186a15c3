using Chat.Data.Conversations;
using Chat.Data.Messages;
using Chat.Data.Schema;
using Chat.Data.Users;
using Microsoft.Extensions.DependencyInjection;

namespace Chat.Data;

public static class DataServiceCollectionExtensions
{
    /// <summary>The shared pool (<see cref="SharedDataSource"/>), the writer's own, the retry pipeline (telling an <see cref="IDatabaseRetryObserver"/> when one is registered) and the repositories.</summary>
    /// <param name="connectionString">Read when the data source is first resolved, so that a missing setting fails at start with its own message.</param>
    public static IServiceCollection AddChatData(this IServiceCollection services, Func<IServiceProvider, string> connectionString)
    {
        services.AddSingleton(sp => SharedDataSource.Build(connectionString(sp)));
        services.AddSingleton(sp => new WriterDataSource(connectionString(sp)));
        services.AddSingleton(sp => new DatabaseResilience(sp.GetService<IDatabaseRetryObserver>()));
        services.AddSingleton<SchemaInitializer>();
        services.AddSingleton<UserRepository>();
        services.AddSingleton<ConversationRepository>();
        services.AddSingleton<MessageRepository>();
        services.AddSingleton<ReadReceiptRepository>();
        services.AddSingleton<MessageHistoryRepository>();
        services.AddSingleton<MessageEditRepository>();
        return services;
    }
}
