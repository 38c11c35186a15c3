using System.ComponentModel.DataAnnotations;

namespace Chat.Core.Options;

/// <summary><c>Chat:Database</c>.</summary>
public sealed class ChatDatabaseOptions
{
    public const string Section = "Chat:Database";

    /// <summary>Apply <c>schema.sql</c> (idempotent) when the gateway starts.</summary>
    public bool ApplySchemaOnStartup { get; set; } = true;

    /// <summary>Where <c>schema.sql</c> is; relative paths are resolved against the gateway's directory.</summary>
    public string SchemaPath { get; set; } = "schema.sql";

    /// <summary>
    /// How long the database work of an API request, or the first database step of a WebSocket handshake (storing
    /// the caller's profile), its retries included, may take before the request is answered 503; also each read of
    /// the catch-up after the handshake, past which the socket is closed with 1011 "database unavailable", and the
    /// database work of each <c>sync</c>, <c>read</c>, <c>edit</c> and <c>delete</c> frame, answered
    /// <c>error internal</c> past it. Npgsql's connect timeout (15 s unless the connection string says otherwise)
    /// applies to each of the retries, so a server that accepts connections but never answers (a proxy whose
    /// PostgreSQL is gone) would otherwise hold a request for about a minute, longer than clients and load balancers
    /// wait. A healthy database answers in milliseconds.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00", ErrorMessage = "Chat:Database:RequestTimeout must be between 00:00:01 and 00:05:00 (hh:mm:ss; a bare number is read as days).")]
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
