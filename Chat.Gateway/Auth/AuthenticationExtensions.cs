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
                    // The header or, as for the socket's handshake, the access_token query parameter.
                    OnMessageReceived = context =>
                    {
                        context.Token = HandshakeAuthenticator.TokenOf(context.Request);
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
