using Chat.Core.Connections;
using Chat.Core.Conversations;
using Chat.Core.Handlers;
using Chat.Core.Limits;
using Chat.Core.Options;
using Chat.Core.Sessions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Chat.Core;

public static class CoreServiceCollectionExtensions
{
    /// <summary>The registry, the publisher seam, the handlers and the session runner, with validated limits.</summary>
    public static IServiceCollection AddChatCore(this IServiceCollection services)
    {
        services.AddOptions<ChatLimitsOptions>()
            .BindConfiguration(ChatLimitsOptions.Section)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<ConnectionRegistry>();
        services.AddSingleton<IChatPublisher>(sp => sp.GetRequiredService<ConnectionRegistry>());
        services.AddSingleton<ConversationSequencer>();
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
        services.AddSingleton<ChatSessionRunner>();
        services.AddSingleton<UserConnectionLimiter>();
        services.AddHostedService<TypingSweeper>();
        return services;
    }
}
