namespace Chat.Gateway.Hosting;

/// <summary>The methods that every readable resource answers.</summary>
public static class ReadMethods
{
    /// <summary>
    /// GET, and HEAD as RFC 9110 §9.3.2 asks of every resource that answers GET: load balancers, uptime checks and
    /// link checkers ask with HEAD; the status and headers are the answer, and the server leaves out the body.
    /// </summary>
    public static readonly string[] GetOrHead = [HttpMethods.Get, HttpMethods.Head];
}
