using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Chat.Cli.Infrastructure;

namespace Chat.Cli.Client;

/// <summary>The gateway's HTTP API (docs/http-api.md) for one caller; answers are kept as raw JSON.</summary>
internal sealed class ChatApi : IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly HttpClient _http;
    private readonly GatewayTarget _target;

    public ChatApi(GatewayTarget target, TimeSpan? timeout = null)
    {
        _target = target;
        _http = new HttpClient { Timeout = timeout ?? TimeSpan.FromSeconds(30) };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", target.Token);
    }

    /// <summary>Sends later requests with <paramref name="token"/>: a renewed one, after the first expired.</summary>
    public void UseToken(string token) => _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);

    /// <summary>Sends one request and returns whatever the gateway answered; only a gateway that cannot be reached throws.</summary>
    public async Task<ApiResponse> SendAsync(HttpMethod method, string path, object? body, CancellationToken cancellation)
    {
        using var request = new HttpRequestMessage(method, _target.Api(path));
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, options: Json);
        }
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellation);
        }
        catch (HttpRequestException e)
        {
            throw Unreachable(_target.BaseUrl, e);
        }
        catch (TaskCanceledException) when (!cancellation.IsCancellationRequested)
        {
            throw new CliFailure($"the gateway at {_target.BaseUrl} did not answer {method} /{path} within {_http.Timeout.TotalSeconds:0} s.");
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellation);
            var authError = response.Headers.WwwAuthenticate.Select(h => h.Parameter).FirstOrDefault(p => p is not null);
            return new ApiResponse(method, path, (int)response.StatusCode, text, Parse(text))
            {
                Url = request.RequestUri,
                AuthenticateParameters = authError,
            };
        }
    }

    public Task<ApiResponse> GetAsync(string path, CancellationToken cancellation) => SendAsync(HttpMethod.Get, path, null, cancellation);

    public Task<ApiResponse> PostAsync(string path, object body, CancellationToken cancellation) => SendAsync(HttpMethod.Post, path, body, cancellation);

    /// <summary><paramref name="path"/> with the query parameters that have a value.</summary>
    public static string WithQuery(string path, params (string Name, object? Value)[] query)
    {
        var given = query.Where(q => q.Value is not null)
            .Select(q => q.Name + "=" + Uri.EscapeDataString(Convert.ToString(q.Value, CultureInfo.InvariantCulture)!))
            .ToList();
        return given.Count == 0 ? path : path + "?" + string.Join('&', given);
    }

    /// <summary>One line for an HTTP failure that names the URL and the cause.</summary>
    public static CliFailure Unreachable(Uri url, Exception e)
    {
        var socket = FindInner<SocketException>(e);
        var cause = socket?.SocketErrorCode switch
        {
            SocketError.ConnectionRefused => "connection refused (is the gateway running?)",
            SocketError.HostNotFound or SocketError.NoData => "host not found",
            SocketError.TimedOut => "the connection timed out",
            // Something listens there, but it does not speak HTTP (a database port, a mistyped one).
            _ when FindInner<HttpRequestException>(e)?.HttpRequestError is HttpRequestError.ResponseEnded or HttpRequestError.InvalidResponse =>
                "what answers there is not an HTTP server (is the port the gateway's?)",
            // The innermost cause says what happened (a TLS handshake that failed, an answer that was not HTTP);
            // the outer ones say "see inner exception".
            _ => socket?.Message ?? Innermost(e).Message,
        };
        return new CliFailure($"cannot reach the gateway at {url}: {cause}");
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }
        return e;
    }

    private static T? FindInner<T>(Exception? e) where T : Exception
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is T found)
            {
                return found;
            }
        }
        return null;
    }

    private static JsonElement Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return default;
        }
        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.Clone();
        }
        catch (JsonException)
        {
            // Not JSON (a proxy's HTML error page, say): the status and the raw text still tell the story.
            return default;
        }
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>An HTTP answer: the status, the raw body and the body parsed (Undefined when empty or not JSON).</summary>
internal sealed record ApiResponse(HttpMethod Method, string Path, int Status, string Text, JsonElement Body)
{
    /// <summary>The address asked, the gateway's base URL included.</summary>
    public Uri? Url { get; init; }

    /// <summary>The parameters of the answer's <c>WWW-Authenticate</c> challenge (<c>error="invalid_token", error_description="..."</c>), when it had one.</summary>
    public string? AuthenticateParameters { get; init; }

    /// <summary>
    /// A 404 or 405 that no endpoint of the gateway made: a problem of type <c>about:blank</c> (the gateway's answer
    /// to a path it does not serve), or no problem at all (another server). The gateway's own 404s, a conversation
    /// or member not found, have another type.
    /// </summary>
    public bool NoEndpoint => Status is 404 or 405 && (Body.ValueKind != JsonValueKind.Object || Body.Str("type") == "about:blank");

    /// <summary>The body when the status is one of <paramref name="expected"/>; otherwise a failure that explains the status.</summary>
    public JsonElement Expect(params int[] expected) =>
        expected.Contains(Status) ? Body
        : Status == 400 ? throw new ValueRefused(Describe())
        : throw new CliFailure(Describe());

    /// <summary>With <c>--json</c>, prints the answer as the gateway sent it and returns true.</summary>
    public bool PrintedAsJson(Arguments arguments, CliContext context)
    {
        if (!arguments.Has("--json"))
        {
            return false;
        }
        context.Output.WriteLine(Text);
        return true;
    }

        /// <summary>What went wrong, in one line: 401 and 404 said plainly, others with the problem's detail and fields.</summary>
    public string Describe()
    {
        var isProblem = Body.ValueKind == JsonValueKind.Object;
        var reason = Status switch
        {
            401 => RefusedToken(AuthenticateParameters, where: ""),
            404 when NoEndpoint => $"{Url?.ToString() ?? "/" + Path} answered HTTP 404 from no endpoint: is --url the address of a RealtimeChat gateway (with no extra path)?",
            404 => $"not found (HTTP 404): {Method} /{Path}: no such conversation or member, or you are not a member",
            503 when isProblem && Body.Str("detail") is { Length: > 0 } => "the gateway is unavailable (HTTP 503)",
            503 => "the gateway is unavailable (HTTP 503): it is shutting down or cannot reach its database; retry later",
            _ => $"{Method} /{Path} answered HTTP {Status} {ReasonPhrase}",
        };
        var detail = new StringBuilder(reason);
        if (Body.ValueKind == JsonValueKind.Object)
        {
            var detailed = false;
            if (Body.Str("detail") is { Length: > 0 } text && Status is not (401 or 404))
            {
                detail.Append(": ").Append(text);
                detailed = true;
            }
            // The gateway's detail already holds every field's messages; a problem without one gets them here.
            if (!detailed && Body.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Object)
            {
                foreach (var field in errors.EnumerateObject())
                {
                    var messages = field.Value.ValueKind == JsonValueKind.Array
                        ? string.Join(" ", field.Value.EnumerateArray().Select(m => m.ToString()))
                        : field.Value.ToString();
                    detail.Append($"; {field.Name}: {messages}");
                }
            }
        }
        // The problem's detail is usually a sentence with its own full stop (or an ellipsis, which stays).
        var sentence = detail.ToString();
        return sentence.EndsWith('.') || sentence.EndsWith('?') ? sentence : sentence + ".";
    }

    // error_description="The token expired at ..." out of the challenge's parameters.
    /// <summary>
    /// Why the gateway refused the token, from its <c>WWW-Authenticate</c> challenge (<paramref name="challenge"/>),
    /// in one line; <paramref name="where"/> follows "HTTP 401" (" at the WebSocket handshake").
    /// </summary>
    public static string RefusedToken(string? challenge, string where)
    {
        var description = Described(challenge)?.TrimEnd('.');
        // A signature the gateway cannot check means the token and the gateway use different keys.
        var hint = description is null || description.Contains("signature", StringComparison.Ordinal) ? " (see --key and Chat__Auth__SigningKey)" : "";
        return $"the gateway refused the token (HTTP 401{where}): {description ?? "it is expired, not signed with the gateway's key, or one of its values is refused"}{hint}";
    }

    private static string? Described(string? parameters)
    {
        const string Key = "error_description=\"";
        var start = parameters?.IndexOf(Key, StringComparison.Ordinal) ?? -1;
        if (start < 0)
        {
            return null;
        }
        start += Key.Length;
        var end = parameters!.IndexOf('"', start);
        return end > start ? parameters[start..end] : null;
    }

    private string ReasonPhrase => Enum.IsDefined((HttpStatusCode)Status) ? ((HttpStatusCode)Status).ToString() : "";
}
