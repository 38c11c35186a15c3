using System.Globalization;
using System.Text.Json;
using Chat.Core.Auth;
using Chat.Core.Protocol;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;

namespace Chat.Gateway.Api;

/// <summary>
/// Collects field errors for a 400 <c>ValidationProblem</c>. Bodies are read as JSON documents rather than bound
/// to types, so that a wrong JSON type is reported against its field instead of as an unreadable body.
/// </summary>
internal sealed class ApiValidation
{
    private readonly Dictionary<string, string[]> _errors = [];

    public bool IsValid => _errors.Count == 0;

    public void Add(string field, string message) =>
        _errors[field] = _errors.TryGetValue(field, out var existing) ? [.. existing, message] : [message];

    /// <summary>The largest request body the API reads; the requests it takes are a few hundred bytes.</summary>
    public const int MaxBodyBytes = 64 * 1024;

    /// <summary>Set when the body was larger than <see cref="MaxBodyBytes"/>: answer 413 rather than 400.</summary>
    public bool BodyTooLarge { get; private set; }

    /// <summary>Set when the body broke HTTP itself (a malformed chunk): answer as the server does, bare.</summary>
    private int? _brokenBodyStatus;

    // A client that shows or logs only `detail` (the RFC 7807 member every problem has) still learns which field is
    // wrong and why: every message names its field.
    public IResult Problem() => _brokenBodyStatus is { } broken
        ? TypedResults.StatusCode(broken)
        : BodyTooLarge
        ? TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Payload Too Large", detail: $"Request bodies are at most {MaxBodyBytes} bytes.")
        : TypedResults.ValidationProblem(_errors, detail: string.Join(" ", _errors.Values.SelectMany(messages => messages)));

    // A repeated property would otherwise be read as its last occurrence, silently: a client that sends two
    // `memberExternalIds` believes it sent the first.
    private static readonly JsonDocumentOptions StrictJson = new() { AllowDuplicateProperties = false };

    /// <summary>Reads the request body as one JSON object; null (with an error recorded) when it is not one.</summary>
    /// <remarks>
    /// Read at the client's pace, with the request's own token rather than the database deadline that the endpoint's
    /// token carries (<see cref="ApiCaller"/>), which starts afresh once the body is in.
    /// </remarks>
    public async Task<JsonElement?> ReadObjectAsync(HttpRequest request)
    {
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = MaxBodyBytes;
        }
        if (request.ContentLength > MaxBodyBytes)
        {
            return TooLarge(request);
        }
        // Buffered (at most MaxBodyBytes), so that a body refused for a repeated property can be read again to name it.
        using var buffer = new MemoryStream();
        try
        {
            await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
            ApiCaller.BodyRead(request.HttpContext);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // A chunked body that grew past the limit.
            return TooLarge(request);
        }
        catch (BadHttpRequestException e)
        {
            // A body that breaks HTTP (a malformed chunk, one cut short): answered bare, and the connection closed,
            // as the server answers a request it cannot parse. Left to throw, it would reach the developer
            // exception page in Development, with a stack trace.
            _brokenBodyStatus = e.StatusCode;
            request.HttpContext.Response.Headers.Connection = "close";
            Add("body", e.Message);
            return null;
        }
        // The parser takes invalid UTF-8 inside a string for a bad value of that field; it is the body that is wrong.
        if (!System.Text.Unicode.Utf8.IsValid(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)))
        {
            Add("body", "The body is not valid UTF-8.");
            return null;
        }
        buffer.Position = 0;
        try
        {
            using var document = JsonDocument.Parse(buffer, StrictJson);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                return document.RootElement.Clone();
            }
        }
        catch (JsonException e)
        {
            if (RepeatedProperty(buffer) is { } repeated)
            {
                Add(repeated, $"{repeated} appears more than once in the body; send each property once.");
            }
            else
            {
                Add("body", $"The body is not valid JSON: {e.Message}");
            }
            return null;
        }
        catch (InvalidOperationException)
        {
            // Looking for repeated properties compares their names, and a name that holds an escaped lone surrogate
            // ("\ud800") cannot be compared.
            Add("body", $"A property name in the body {FrameReader.ValidTextRule}.");
            return null;
        }
        Add("body", "The body must be a JSON object.");
        return null;
    }

    private JsonElement? TooLarge(HttpRequest request)
    {
        BodyTooLarge = true;
        // The rest of the body is not read, so the server closes the connection after the answer: said in the answer,
        // a keep-alive client opens a new one for its next request instead of failing on this one.
        request.HttpContext.Response.Headers.Connection = "close";
        Add("body", $"Request bodies are at most {MaxBodyBytes} bytes.");
        return null;
    }

    public string? OptionalString(JsonElement body, string field, int maxLength)
    {
        if (!body.TryGetProperty(field, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (Text(element, out var problem) is not { } value)
        {
            Add(field, $"{field} {problem}.");
            return null;
        }
        if (value.Length > maxLength)
        {
            Add(field, $"{field} must be at most {maxLength} characters.");
            return null;
        }
        return value;
    }

    public bool? OptionalBool(JsonElement body, string field)
    {
        if (!body.TryGetProperty(field, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (element.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
        {
            Add(field, $"{field} must be true or false.");
            return null;
        }
        return element.GetBoolean();
    }

    /// <summary>
    /// An array of 1 to <paramref name="maxCount"/> strings, each of which <paramref name="rule"/> (what is wrong
    /// with it, or null) accepts.
    /// </summary>
    public string[]? RequiredStringArray(JsonElement body, string field, int maxCount, Func<string, string?> rule)
    {
        if (!body.TryGetProperty(field, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            Add(field, $"{field} is required.");
            return null;
        }
        if (element.ValueKind != JsonValueKind.Array)
        {
            Add(field, $"{field} must be an array of strings.");
            return null;
        }
        var count = element.GetArrayLength();
        if (count == 0 || count > maxCount)
        {
            Add(field, $"{field} must have 1 to {maxCount} entries.");
            return null;
        }
        var values = new List<string>(count);
        foreach (var item in element.EnumerateArray())
        {
            var value = Text(item, out var problem);
            if (value is not null)
            {
                problem = rule(value);
            }
            if (problem is not null)
            {
                // The entry's index, so that the message finds it in a long list.
                Add(field, $"{field}[{values.Count}] {problem}.");
                return null;
            }
            values.Add(value!);
        }
        return [.. values];
    }

    /// <summary>An external id, by the rule its token's <c>sub</c> follows too (<see cref="ExternalIds"/>).</summary>
    public string? RequiredExternalId(JsonElement body, string field)
    {
        if (!body.TryGetProperty(field, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            Add(field, $"{field} is required.");
            return null;
        }
        if (Text(element, out var notText) is not { } value)
        {
            Add(field, $"{field} {notText}.");
            return null;
        }
        if (ExternalIds.Problem(value) is { } problem)
        {
            Add(field, $"{field} {problem}.");
            return null;
        }
        return value;
    }

    /// <summary>An external id in the path: one that no user can have is a bad request, as it is in a body.</summary>
    public string ExternalId(string value, string field)
    {
        if (ExternalIds.Problem(value) is { } problem)
        {
            Add(field, $"{field} {problem}.");
        }
        return value;
    }

    public string[]? RequiredExternalIds(JsonElement body, string field, int maxCount) =>
        RequiredStringArray(body, field, maxCount, ExternalIds.Problem);

    /// <summary>A route value that must be a positive 64-bit integer.</summary>
    public long Id(string? raw, string field)
    {
        if (long.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0)
        {
            return id;
        }
        Add(field, $"{field} must be a positive integer.");
        return 0;
    }

    /// <summary>An optional integer query value within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public long? OptionalInteger(StringValues values, string field, long min, long max)
    {
        if (Single(values, field) is not { Length: > 0 } raw)
        {
            return null;
        }
        if (long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }
        Add(field, $"{field} must be an integer from {min} to {max}.");
        return null;
    }

    /// <summary>
    /// A query parameter's one value; null when it is absent, or given more than once (an error then: which of
    /// <c>?limit=5&amp;limit=50</c> was meant is not the server's guess).
    /// </summary>
    public string? Single(StringValues values, string field)
    {
        if (values.Count > 1)
        {
            Add(field, $"{field} is given more than once.");
            return null;
        }
        return values.Count == 1 ? values[0] : null;
    }

    /// <summary>A JSON string's text; null, with what is wrong, for another JSON type or a string the database cannot store.</summary>
    private static string? Text(JsonElement element, out string? problem)
    {
        problem = null;
        if (element.ValueKind != JsonValueKind.String)
        {
            problem = "must be a string";
            return null;
        }
        // An escaped lone surrogate ("\ud800") is valid JSON, but GetString refuses to decode it.
        string value;
        try
        {
            value = element.GetString()!;
        }
        catch (InvalidOperationException)
        {
            problem = FrameReader.ValidTextRule;
            return null;
        }
        if (!FrameReader.IsValidText(value))
        {
            problem = FrameReader.ValidTextRule;
            return null;
        }
        return value;
    }

    /// <summary>The property a body that the parser refused holds twice (<see cref="RepeatedProperties"/>), if that was why.</summary>
    private static string? RepeatedProperty(MemoryStream json) => RepeatedProperties.Find(json.ToArray());
}
