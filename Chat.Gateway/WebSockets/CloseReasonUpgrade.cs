using Chat.Core.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Chat.Gateway.WebSockets;

/// <summary>
/// The request's upgrade, handing the WebSocket library a <see cref="CloseReasonStream"/> over the upgraded
/// connection, so that the closes the library sends on its own (invalid UTF-8, a malformed frame) carry a reason
/// like the gateway's own closes.
/// </summary>
/// <remarks>
/// Installed ahead of <c>UseWebSockets</c>, which takes the upgrade feature as it finds it when the request comes
/// in. HTTP/1.1 only: a WebSocket over HTTP/2 is accepted through another feature, and there the library's closes
/// keep their empty reason.
/// </remarks>
internal sealed class CloseReasonUpgrade(IHttpUpgradeFeature inner) : IHttpUpgradeFeature
{
    private CloseReasonStream? _stream;

    public bool IsUpgradableRequest => inner.IsUpgradableRequest;

    public async Task<Stream> UpgradeAsync() => _stream = new CloseReasonStream(await inner.UpgradeAsync());

    public static Task InstallAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Features.Get<IHttpUpgradeFeature>() is { } upgrade)
        {
            context.Features.Set<IHttpUpgradeFeature>(new CloseReasonUpgrade(upgrade));
        }
        return next(context);
    }

    /// <summary>
    /// The stream of an accepted socket, for its session to learn of the library's closes. The request's own
    /// feature is put back: the handshake request lives as long as the socket, and this one is of no more use.
    /// </summary>
    public static CloseReasonStream? Release(HttpContext context)
    {
        if (context.Features.Get<IHttpUpgradeFeature>() is not CloseReasonUpgrade upgrade)
        {
            return null;
        }
        context.Features.Set(upgrade.Inner);
        return upgrade._stream;
    }

    private IHttpUpgradeFeature Inner => inner;
}
