namespace Chat.Gateway.Api;

/// <summary>
/// A path that no endpoint serves (404), or a method that a path does not answer (405, whose <c>Allow</c> header
/// routing has set), answers a problem like the API's own errors instead of routing's empty body, so that a client
/// reading <c>detail</c> learns what it asked wrong.
/// </summary>
/// <remarks>
/// Its type is <c>about:blank</c> (RFC 9457 §4.2.1: nothing beyond the status), unlike the API's own 404s, so
/// that a client can tell a wrong address from a conversation that is not there: one that took the first for the
/// second would forget conversations that still exist.
/// </remarks>
public static class UnroutedRequests
{
    public const string ProblemType = "about:blank";

    /// <summary>
    /// Runs after the pipeline's own answer: only an empty 404 or 405 gets a body, so the token challenges (empty
    /// 401s, documented as such) and every endpoint's own answers pass as they are.
    /// </summary>
    public static IApplicationBuilder UseProblemsForUnroutedRequests(this IApplicationBuilder app) =>
        app.UseStatusCodePages(context => context.HttpContext.Response.StatusCode switch
        {
            StatusCodes.Status404NotFound => WriteAsync(context.HttpContext, "Not Found", $"No endpoint serves {context.HttpContext.Request.Path}."),
            StatusCodes.Status405MethodNotAllowed => WriteAsync(context.HttpContext, "Method Not Allowed",
                $"{context.HttpContext.Request.Path} does not answer {context.HttpContext.Request.Method}; it answers {context.HttpContext.Response.Headers.Allow}."),
            _ => Task.CompletedTask,
        });

    private static Task WriteAsync(HttpContext context, string title, string detail) =>
        TypedResults.Problem(statusCode: context.Response.StatusCode, title: title, detail: detail, type: ProblemType).ExecuteAsync(context);
}
