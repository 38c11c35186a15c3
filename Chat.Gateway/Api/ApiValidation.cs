using System.Globalization;
using System.Text.Json;
using Chat.Core.Auth;
using Microsoft.AspNetCore.Http.Features;

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

    public IResult Problem() => BodyTooLarge
        ? TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Payload Too Large", detail: $"Request bodies are at most {MaxBodyBytes} bytes.")
        : TypedResults.ValidationProblem(_errors);

    /// <summary>Reads the request body as one JSON object; null (with an error recorded) when it is not one.</summary>
    public async Task<JsonElement?> ReadObjectAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = MaxBodyBytes;
        }
        if (request.ContentLength > MaxBodyBytes)
        {
            BodyTooLarge = true;
            Add("body", $"Request bodies are at most {MaxBodyBytes} bytes.");
            return null;
        }
        try
        {
            using var document = await JsonDocument.ParseAsync(request.Body, default, cancellationToken);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                return document.RootElement.Clone();
            }
        }
        catch (JsonException e)
        {
            Add("body", $"The body is not valid JSON: {e.Message}");
            return null;
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // A chunked body that grew past the limit.
            BodyTooLarge = true;
            Add("body", $"Request bodies are at most {MaxBodyBytes} bytes.");
            return null;
        }
        Add("body", "The body must be a JSON object.");
        return null;
    }

    public string? OptionalString(JsonElement body, string field, int maxLength)
    {
        if (!body.TryGetProperty(field, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (element.ValueKind != JsonValueKind.String || TryGetText(element) is not { } value)
        {
            Add(field, $"{field} must be a string.");
            return null;
        }
        if (value.Length > maxLength)
        {
            Add(field, $"{field} must be at most {maxLength} characters.");
            return null;
        }
        return value;
    }

    public string? RequiredString(JsonElement body, string field, int maxLength)
    {
        if (!body.TryGetProperty(field, out var element) || element.ValueKind == JsonValueKind.Null)
        {
            Add(field, $"{field} is required.");
            return null;
        }
        var value = OptionalString(body, field, maxLength);
        if (value is { Length: 0 })
        {
            Add(field, $"{field} must not be empty.");
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

    /// <summary>An array of 1 to <paramref name="maxCount"/> non-empty strings of at most <paramref name="maxLength"/> characters.</summary>
    public string[]? RequiredStringArray(JsonElement body, string field, int maxCount, int maxLength)
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
            if (item.ValueKind != JsonValueKind.String || TryGetText(item) is not { Length: > 0 } value || value.Length > maxLength)
            {
                Add(field, $"{field} must hold strings of 1 to {maxLength} characters.");
                return null;
            }
            values.Add(value);
        }
        return [.. values];
    }

    /// <summary>An external id, by the rule its token's <c>sub</c> follows too (<see cref="ExternalIds"/>).</summary>
    public string? RequiredExternalId(JsonElement body, string field) =>
        RequiredString(body, field, ExternalIds.MaxLength) is { } value && IsExternalId(value, field) ? value : null;

    public string[]? RequiredExternalIds(JsonElement body, string field, int maxCount) =>
        RequiredStringArray(body, field, maxCount, ExternalIds.MaxLength) is { } values && values.All(v => IsExternalId(v, field)) ? values : null;

    private bool IsExternalId(string value, string field)
    {
        if (ExternalIds.Problem(value) is { } problem)
        {
            Add(field, $"{field} {problem}.");
            return false;
        }
        return true;
    }

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
    public long? OptionalInteger(string? raw, string field, long min, long max)
    {
        if (string.IsNullOrEmpty(raw))
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

    // An escaped lone surrogate is valid JSON but not text the database can store.
    private static string? TryGetText(JsonElement element)
    {
        try
        {
            var value = element.GetString();
            return value is not null && Chat.Core.Protocol.FrameReader.IsValidText(value) ? value : null;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }
}
