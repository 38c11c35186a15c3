using Chat.Core.Auth;
using Chat.Core.Options;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;

namespace Chat.Gateway.Auth;

public static class AuthenticationExtensions
{
    public const string AccessTokenQueryParameter = "access_token";

    /// <summary>JWT bearer authentication of the HTTP API from <c>Chat:Auth</c>, validated at start.</summary>
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
                // The descriptions the socket's handshake gives, in the gateway's words: the handler's own quote the
                // token, print dates in the server's locale without a zone, and call a wrong signature a missing key.
                bearer.Events = new JwtBearerEvents
                {
                    OnChallenge = context =>
                    {
                        if (BearerChallenge.Describe(context.AuthenticateFailure, HandshakeAuthenticator.TokenOf(context.Request)) is { } description)
                        {
                            context.ErrorDescription = description;
                        }
                        return Task.CompletedTask;
                    },
                };
                // The header only: the access_token query parameter is for the socket's handshake, which browsers
                // cannot give a header and which HandshakeAuthenticator validates ahead of this middleware. A token
                // in an API URL would end up in every proxy's and server's access log.
            });
        services.AddAuthorization();
        return services;
    }

    private sealed class ChatAuthOptionsValidator(IHostEnvironment environment) : IValidateOptions<ChatAuthOptions>
    {
        public ValidateOptionsResult Validate(string? name, ChatAuthOptions options) =>
            options.Failures(environment.IsDevelopment()).ToList() is { Count: > 0 } failures
                ? ValidateOptionsResult.Fail(failures)
                : ValidateOptionsResult.Success;
    }
}
