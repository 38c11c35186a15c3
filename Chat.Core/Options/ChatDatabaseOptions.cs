namespace Chat.Core.Options;

/// <summary><c>Chat:Database</c>.</summary>
public sealed class ChatDatabaseOptions
{
    public const string Section = "Chat:Database";

    /// <summary>Apply <c>schema.sql</c> (idempotent) when the gateway starts.</summary>
    public bool ApplySchemaOnStartup { get; set; } = true;

    /// <summary>Where <c>schema.sql</c> is; relative paths are resolved against the gateway's directory.</summary>
    public string SchemaPath { get; set; } = "schema.sql";
}
