using Chat.Core.Auth;
using Chat.Core.Options;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.Auth;

public static class AuthenticationExtensions
{
    public const string AccessTokenQueryParameter = "access_token";

    /// <summary>JWT bearer authentication from <c>Chat:Auth</c>, validated at start.</summary>
    public static IServiceCollection AddChatAuthentication(this IServiceCollection services)
    {
        services.AddOptions<ChatAuthOptions>()
            .BindConfiguration(ChatAuthOptions.Section)
            .PostConfigure<IHostEnvironment>((options, environment) =>
            {
                if (environment.IsDevelopment() && string.IsNullOrEmpty(options.SigningKey))
                {
                    options.SigningKey = ChatAuthOptions.DevelopmentSigningKey;
                }
            })
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<ChatAuthOptions>, ChatAuthOptionsValidator>();

        services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer();
        services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<IOptions<ChatAuthOptions>>((bearer, auth) =>
            {
                bearer.TokenValidationParameters = ChatTokens.ValidationParameters(auth.Value);
                // Keep the token's own claim names (sub, name, picture).
                bearer.MapInboundClaims = false;
                bearer.Events = new JwtBearerEvents
                {
                    // Browsers cannot set headers on a WebSocket handshake; they pass the token in the query.
                    OnMessageReceived = context =>
                    {
                        if (string.IsNullOrEmpty(context.Request.Headers.Authorization)
                            && context.Request.Query.TryGetValue(AccessTokenQueryParameter, out var token))
                        {
                            context.Token = token;
                        }
                        return Task.CompletedTask;
                    },
                };
            });
        services.AddAuthorization();
        return services;
    }

    private sealed class ChatAuthOptionsValidator(IHostEnvironment environment) : IValidateOptions<ChatAuthOptions>
    {
        public ValidateOptionsResult Validate(string? name, ChatAuthOptions options) =>
            options.Validate(environment.IsDevelopment()) is { } failure
                ? ValidateOptionsResult.Fail(failure)
                : ValidateOptionsResult.Success;
    }
}
