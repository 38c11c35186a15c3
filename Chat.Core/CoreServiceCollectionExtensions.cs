using Chat.Core.Connections;
using Chat.Core.Conversations;
using Chat.Core.Handlers;
using Chat.Core.Limits;
using Chat.Core.Messages;
using Chat.Core.Metrics;
using Chat.Core.Options;
using Chat.Core.Sessions;
using Chat.Data;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Chat.Core;

public static class CoreServiceCollectionExtensions
{
    /// <summary>The registry, the publisher seam, the message writer, the handlers and the session runner, with validated options.</summary>
    public static IServiceCollection AddChatCore(this IServiceCollection services)
    {
        services.AddOptions<ChatLimitsOptions>()
            .BindConfiguration(ChatLimitsOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddOptions<ChatWriterOptions>()
            .BindConfiguration(ChatWriterOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<ChatMetrics>();
        services.AddSingleton<IDatabaseRetryObserver>(sp => sp.GetRequiredService<ChatMetrics>());
        services.AddSingleton<ConnectionRegistry>();
        services.AddSingleton<IChatPublisher>(sp => sp.GetRequiredService<ConnectionRegistry>());
        services.AddSingleton<MembershipFences>();
        services.AddSingleton<MessageWriter>();
        services.AddHostedService(sp => sp.GetRequiredService<MessageWriter>());
        services.AddSingleton<PresenceAnnouncer>();
        services.AddSingleton<MessageHandler>();
        services.AddSingleton<TypingHandler>();
        services.AddSingleton<ReadHandler>();
        services.AddSingleton<PresenceHandler>();
        services.AddSingleton<SyncHandler>();
        services.AddSingleton<EditHandler>();
        services.AddSingleton<DeleteHandler>();
        services.AddSingleton<ConversationService>();
        services.AddSingleton<FrameDispatcher>();
        services.AddSingleton<TokenExpiryScheduler>();
        services.AddSingleton<ChatSessionRunner>();
        services.AddSingleton<UserConnectionLimiter>();
        services.AddHostedService<TypingSweeper>();
        return services;
    }
}
