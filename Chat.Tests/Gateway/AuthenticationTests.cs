using System.Net;
using System.Net.WebSockets;
using System.Text;
using Chat.Core.Auth;
using Chat.Core.Options;
using Chat.Core.Protocol;
using Chat.Tests.Infrastructure;

namespace Chat.Tests.Gateway;

public sealed class AuthenticationTests : GatewayTest
{
    private async Task<HttpStatusCode> HandshakeStatusAsync(string? token, bool inQuery = false)
    {
        var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        var uri = new UriBuilder(Gateway.WebSocketAddress);
        if (token is not null && inQuery)
        {
            uri.Query = "access_token=" + Uri.EscapeDataString(token);
        }
        else if (token is not null)
        {
            socket.Options.SetRequestHeader("Authorization", "Bearer " + token);
        }
        try
        {
            await socket.ConnectAsync(uri.Uri, CancellationToken.None);
            await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None);
            return HttpStatusCode.SwitchingProtocols;
        }
        catch (WebSocketException)
        {
            return socket.HttpStatusCode;
        }
        finally
        {
            socket.Dispose();
        }
    }

    private static string Base64Url(string json) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes(json)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>
    /// A token signed with the gateway's key whose payload is exactly this JSON: a token library writes a lone
    /// surrogate as U+FFFD, and only a hand-made payload carries one as the escape <c>\ud800</c>.
    /// </summary>
    private static string SignedToken(string payloadJson)
    {
        var unsigned = $"{Base64Url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}")}.{Base64Url(payloadJson)}";
        var signature = System.Security.Cryptography.HMACSHA256.HashData(
            Encoding.UTF8.GetBytes(ChatAuthOptions.DevelopmentSigningKey), Encoding.ASCII.GetBytes(unsigned));
        return $"{unsigned}.{Convert.ToBase64String(signature).TrimEnd('=').Replace('+', '-').Replace('/', '_')}";
    }

    private static string Claims(string sub, string? name = null, string? picture = null)
    {
        var exp = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds();
        return $"{{\"sub\":\"{sub}\",\"exp\":{exp}{(name is null ? "" : $",\"name\":\"{name}\"")}{(picture is null ? "" : $",\"picture\":\"{picture}\"")}}}";
    }

    [Test]
    public async Task A_valid_token_in_the_header_or_the_query_upgrades()
    {
        Assert.That(await HandshakeStatusAsync(Gateway.TokenFor("header-user")), Is.EqualTo(HttpStatusCode.SwitchingProtocols));
        Assert.That(await HandshakeStatusAsync(Gateway.TokenFor("query-user"), inQuery: true), Is.EqualTo(HttpStatusCode.SwitchingProtocols));
    }

    [Test]
    public async Task A_missing_token_gets_401_without_an_upgrade() =>
        Assert.That(await HandshakeStatusAsync(null), Is.EqualTo(HttpStatusCode.Unauthorized));

    [Test]
    public async Task A_malformed_token_gets_401() =>
        Assert.That(await HandshakeStatusAsync("not.a.jwt"), Is.EqualTo(HttpStatusCode.Unauthorized));

    [Test]
    public async Task A_token_signed_with_another_key_gets_401()
    {
        var forged = ChatTokens.Issue(new ChatAuthOptions { SigningKey = new string('k', 40) }, "forger", null, null, TimeSpan.FromHours(1));
        Assert.That(await HandshakeStatusAsync(forged), Is.EqualTo(HttpStatusCode.Unauthorized));
    }

    [Test]
    public async Task An_unsigned_alg_none_token_gets_401()
    {
        var exp = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds();
        var unsigned = $"{Base64Url("{\"alg\":\"none\",\"typ\":\"JWT\"}")}.{Base64Url($"{{\"sub\":\"nobody\",\"exp\":{exp}}}")}.";
        Assert.That(await HandshakeStatusAsync(unsigned), Is.EqualTo(HttpStatusCode.Unauthorized));
    }

    [Test]
    public async Task An_expired_token_gets_401()
    {
        var expired = ChatTokens.Issue(Gateway.AuthOptions, "late", null, null, TimeSpan.FromMinutes(5), DateTime.UtcNow.AddHours(-1));
        Assert.That(await HandshakeStatusAsync(expired), Is.EqualTo(HttpStatusCode.Unauthorized));
    }

    [Test]
    public async Task A_token_expired_within_the_clock_skew_opens_no_socket_but_still_serves_a_request()
    {
        // Five seconds past exp, inside the default 30 s tolerance.
        var justExpired = ChatTokens.Issue(Gateway.AuthOptions, $"late-{Guid.NewGuid():N}", null, null, TimeSpan.FromMinutes(1), DateTime.UtcNow.AddSeconds(-65));
        using var http = new HttpClient { BaseAddress = Gateway.HttpAddress };
        http.DefaultRequestHeaders.Authorization = new("Bearer", justExpired);

        Assert.That(await HandshakeStatusAsync(justExpired), Is.EqualTo(HttpStatusCode.Unauthorized), "its connection would be closed for expiry at once");
        Assert.That((await http.GetAsync("/api/users/me")).StatusCode, Is.EqualTo(HttpStatusCode.OK), "a request is over before the tolerance is");
    }

    [Test]
    public async Task A_token_without_exp_gets_401()
    {
        var handler = new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false };
        var token = handler.CreateToken(new Microsoft.IdentityModel.Tokens.SecurityTokenDescriptor
        {
            Claims = new Dictionary<string, object> { ["sub"] = "forever" },
            SigningCredentials = new Microsoft.IdentityModel.Tokens.SigningCredentials(
                new Microsoft.IdentityModel.Tokens.SymmetricSecurityKey(Encoding.UTF8.GetBytes(ChatAuthOptions.DevelopmentSigningKey)),
                Microsoft.IdentityModel.Tokens.SecurityAlgorithms.HmacSha256),
        });
        Assert.That(await HandshakeStatusAsync(token), Is.EqualTo(HttpStatusCode.Unauthorized));
    }

    [Test]
    public async Task A_valid_token_without_a_subject_gets_401()
    {
        var anonymous = ChatTokens.Issue(Gateway.AuthOptions, " ", "No One", null, TimeSpan.FromHours(1));
        Assert.That(await HandshakeStatusAsync(anonymous), Is.EqualTo(HttpStatusCode.Unauthorized));
    }

    // PostgreSQL refuses a NUL in text: a token with one in its subject, name or picture failed every handshake
    // with 503 and every API request with 500, for as long as it lived. The token library already refuses one
    // whose claims hold an escaped lone surrogate; the rule is the same for both.
    [TestCase("sub", @"\u0000")]
    [TestCase("name", @"\u0000")]
    [TestCase("picture", @"\u0000")]
    [TestCase("sub", @"\ud800")]
    [TestCase("name", @"\udc00")]
    [TestCase("picture", @"\ud83d x")]
    public async Task A_token_with_a_subject_name_or_picture_that_is_not_valid_text_gets_401_from_the_socket_and_the_api_and_stores_nothing(string claim, string escaped)
    {
        var marker = Guid.NewGuid().ToString("N");
        string Value(string name, string valid) => name == claim ? $"{valid}{escaped}" : valid;
        var token = SignedToken(Claims(Value("sub", $"user-{marker}"), Value("name", "Name"), Value("picture", "https://img.example.com/a.png")));
        using var http = new HttpClient { BaseAddress = Gateway.HttpAddress };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);

        Assert.That(await HandshakeStatusAsync(token), Is.EqualTo(HttpStatusCode.Unauthorized));
        var api = await http.GetAsync("/api/users/me");
        // A NUL is refused by the gateway, which says so in an error_description; a lone surrogate by the token library.
        Assert.That((api.StatusCode, api.Headers.WwwAuthenticate.ToString()), Is.EqualTo((HttpStatusCode.Unauthorized,
            escaped == @"\u0000" ? $"Bearer error=\"invalid_token\", error_description=\"The token's {claim} must be valid text: no NUL character and no unpaired surrogate.\"" : "Bearer error=\"invalid_token\"")));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM user_profiles WHERE strpos(external_id, @marker) > 0", new { marker }), Is.Zero);
    }

    [TestCase("expired", "The token has expired.")]
    [TestCase("not yet valid", "The token is not valid yet (nbf).")]
    [TestCase("signed with another key", "The token's signature is not valid.")]
    [TestCase("unsigned", "The token's signing algorithm is not accepted.")]
    [TestCase("not a token", "The token is malformed.")]
    [TestCase("signed with HS384", "The token's signing algorithm is not accepted.")]
    public async Task A_refused_token_gets_a_challenge_that_says_why_from_the_socket_and_the_api_alike(string kind, string description)
    {
        var now = DateTime.UtcNow;
        var exp = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds();
        var token = kind switch
        {
            "expired" => ChatTokens.Issue(Gateway.AuthOptions, "late", null, null, TimeSpan.FromMinutes(5), now.AddHours(-1)),
            "not yet valid" => ChatTokens.Issue(Gateway.AuthOptions, "early", null, null, TimeSpan.FromHours(2), now.AddHours(1)),
            "signed with another key" => ChatTokens.Issue(new ChatAuthOptions { SigningKey = new string('k', 32) }, "forged", null, null, TimeSpan.FromHours(1)),
            "signed with HS384" => new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler().CreateToken(new Microsoft.IdentityModel.Tokens.SecurityTokenDescriptor
            {
                Claims = new Dictionary<string, object> { ["sub"] = "other-alg" },
                Expires = now.AddHours(1),
                SigningCredentials = new(new Microsoft.IdentityModel.Tokens.SymmetricSecurityKey(Encoding.UTF8.GetBytes(ChatAuthOptions.DevelopmentSigningKey + "-for-a-longer-hs384-key")),
                    Microsoft.IdentityModel.Tokens.SecurityAlgorithms.HmacSha384),
            }),
            "unsigned" => $"{Base64Url("{\"alg\":\"none\",\"typ\":\"JWT\"}")}.{Base64Url($"{{\"sub\":\"nobody\",\"exp\":{exp}}}")}.",
            _ => "not-a-token",
        };
        var (socket, api) = await ChallengesAsync(token);

        var challenge = $"Bearer error=\"invalid_token\", error_description=\"{description}\"";
        Assert.That(socket, Is.EqualTo((HttpStatusCode.Unauthorized, challenge)));
        Assert.That(api, Is.EqualTo((HttpStatusCode.Unauthorized, challenge)));
    }

    /// <summary>What the WebSocket handshake and an API request answer the same token: status and challenge each.</summary>
    private async Task<((HttpStatusCode, string) Socket, (HttpStatusCode, string) Api)> ChallengesAsync(string token)
    {
        using var http = Gateway.CreateHttpClient();
        using var handshake = new HttpRequestMessage(HttpMethod.Get, "/ws");
        handshake.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/users/me");
        request.Headers.Authorization = handshake.Headers.Authorization;

        using var socket = await http.SendAsync(handshake);
        using var api = await http.SendAsync(request);
        return ((socket.StatusCode, socket.Headers.WwwAuthenticate.ToString()), (api.StatusCode, api.Headers.WwwAuthenticate.ToString()));
    }

    // The HTTP API refuses such an external id as a member, so a profile made from this sub could never be added
    // to a conversation by its id; both follow one rule (ExternalIds).
    [TestCase(" {0}", "must not start or end with white space")]
    [TestCase("{0}\t", "must not start or end with white space")]
    [TestCase("{0}\u00a0", "must not start or end with white space")]
    [TestCase("{0}\nsecond line", "must not hold control characters")]
    [TestCase("{0}\u0007", "must not hold control characters")]
    [TestCase("{0}\u202e", "must not hold bidirectional control characters (U+202A to U+202E, U+2066 to U+2069)")]
    public async Task A_token_whose_subject_the_api_could_not_name_gets_401_with_a_description_from_the_socket_and_the_api_and_stores_nothing(string sub, string problem)
    {
        var marker = Guid.NewGuid().ToString("N");
        var token = ChatTokens.Issue(Gateway.AuthOptions, string.Format(sub, $"user-{marker}"), "Name", null, TimeSpan.FromHours(1));
        var (socket, api) = await ChallengesAsync(token);

        var challenge = $"Bearer error=\"invalid_token\", error_description=\"The token's sub {problem}.\"";
        Assert.That(socket, Is.EqualTo((HttpStatusCode.Unauthorized, challenge)));
        Assert.That(api, Is.EqualTo((HttpStatusCode.Unauthorized, challenge)));
        Assert.That(await HandshakeStatusAsync(token), Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM user_profiles WHERE strpos(external_id, @marker) > 0", new { marker }), Is.Zero);
    }

    // The name reaches every member's client as senderName, on one line beside the message: the rule of a title.
    // Given as JSON escapes: a test case whose name holds a control character is not run by the test adapter.
    [TestCase(@"Alice\nBob", "must not hold control characters")]
    [TestCase(@"Alice\u001b[2J", "must not hold control characters")]
    [TestCase(@"Alice\u009b", "must not hold control characters")]
    [TestCase(@"Alice\u202e", "must not hold bidirectional control characters (U+202A to U+202E, U+2066 to U+2069)")]
    public async Task A_token_whose_name_holds_a_control_or_bidirectional_control_character_gets_401_with_a_description_and_stores_nothing(string escapedName, string problem)
    {
        var marker = Guid.NewGuid().ToString("N");
        var token = SignedToken(Claims($"user-{marker}", escapedName));
        var (socket, api) = await ChallengesAsync(token);

        var challenge = $"Bearer error=\"invalid_token\", error_description=\"The token's name {problem}.\"";
        Assert.That(socket, Is.EqualTo((HttpStatusCode.Unauthorized, challenge)));
        Assert.That(api, Is.EqualTo((HttpStatusCode.Unauthorized, challenge)));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM user_profiles WHERE strpos(external_id, @marker) > 0", new { marker }), Is.Zero);
    }

    [TestCase(".")]
    [TestCase("..")]
    public async Task A_token_whose_subject_is_a_dot_segment_gets_401_since_no_api_path_could_name_it(string sub)
    {
        var token = ChatTokens.Issue(Gateway.AuthOptions, sub, "Name", null, TimeSpan.FromHours(1));
        var (socket, api) = await ChallengesAsync(token);

        var challenge = "Bearer error=\"invalid_token\", error_description=\"The token's sub must not be . or .. (no path segment can name them).\"";
        Assert.That(socket, Is.EqualTo((HttpStatusCode.Unauthorized, challenge)));
        Assert.That(api, Is.EqualTo((HttpStatusCode.Unauthorized, challenge)));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM user_profiles WHERE external_id = @sub", new { sub }), Is.Zero);
    }

    // The avatar reaches every member's client as senderAvatarUrl, where it is loaded or linked: a script or data
    // URL there is the sender's content in everyone else's client.
    [TestCase("javascript:alert(document.cookie)")]
    [TestCase("data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=")]
    [TestCase("/avatars/relative.png")]
    [TestCase("ftp://img.example.com/a.png")]
    [TestCase("https://bank.example@evil.example/a.png")]
    [TestCase("https://img.example.com/a b.png")]
    [TestCase(" https://img.example.com/a.png")]
    public async Task A_token_whose_picture_is_not_an_http_url_gets_401_with_a_description_from_the_socket_and_the_api_and_stores_nothing(string picture)
    {
        var marker = Guid.NewGuid().ToString("N");
        var token = ChatTokens.Issue(Gateway.AuthOptions, $"user-{marker}", "Name", picture, TimeSpan.FromHours(1));
        var (socket, api) = await ChallengesAsync(token);

        var challenge = $"Bearer error=\"invalid_token\", error_description=\"The token's picture {LinkUrls.Rule}.\"";
        Assert.That(socket, Is.EqualTo((HttpStatusCode.Unauthorized, challenge)));
        Assert.That(api, Is.EqualTo((HttpStatusCode.Unauthorized, challenge)));
        Assert.That(await Sql.ScalarAsync<long>("SELECT count(*) FROM user_profiles WHERE strpos(external_id, @marker) > 0", new { marker }), Is.Zero);
    }

    [TestCase("http://img.example.com/a.png")]
    [TestCase("https://img.example.com:8443/avatars/a.png?size=64#top")]
    public async Task A_token_whose_picture_is_an_http_or_https_url_is_accepted_and_its_avatar_stored(string picture)
    {
        var externalId = $"user-{Guid.NewGuid():N}";
        await using (var socket = await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(externalId, "Name", picture)))
        {
            await socket.ReadUntilReadyAsync();
        }

        Assert.That(await Sql.ScalarAsync<string>("SELECT avatar_url FROM user_profiles WHERE external_id = @externalId", new { externalId }), Is.EqualTo(picture));
    }

    [TestCase("{0}")]
    [TestCase("inner space {0}")]
    [TestCase("https://idp.example/users/{0}")]
    [TestCase("ünïcödé 😀 {0}")]
    [TestCase(" {0}")]
    [TestCase("{0} ")]
    [TestCase("\u3000{0}")]
    // Named: a test case whose generated name holds U+0001 is never run by the test adapter.
    [TestCase("{0}\u0001inner", TestName = "A_subject_with_an_inner_control_character_is_accepted_in_a_token_exactly_when_the_api_accepts_it_as_a_member")]
    [TestCase("{0}\u007f")]
    [TestCase("{0}\u0085")]
    [TestCase("{0}\u2066x\u2069")]
    [TestCase("\u05D0\u200F{0}")]
    public async Task A_subject_is_accepted_in_a_token_exactly_when_the_api_accepts_it_as_a_member(string id)
    {
        var externalId = string.Format(id, Guid.NewGuid().ToString("N"));
        var caller = await Gateway.CreateUserAsync();
        using var callerHttp = Gateway.CreateHttpClient(caller.ExternalId);
        using var subject = new HttpClient { BaseAddress = Gateway.HttpAddress };
        subject.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Gateway.TokenFor(externalId));

        var asToken = await subject.GetAsync("/api/users/me");
        var asMember = await callerHttp.PostAsync("/api/conversations",
            new StringContent(System.Text.Json.JsonSerializer.Serialize(new { memberExternalIds = new[] { externalId } }), Encoding.UTF8, "application/json"));

        Assert.That(asMember.StatusCode, Is.AnyOf(HttpStatusCode.Created, HttpStatusCode.BadRequest));
        Assert.That(asToken.StatusCode == HttpStatusCode.OK, Is.EqualTo(asMember.StatusCode == HttpStatusCode.Created),
            $"token: {asToken.StatusCode}, member: {asMember.StatusCode} {await asMember.Content.ReadAsStringAsync()}");
    }

    [TestCase("sub", ChatTokens.MaxExternalIdLength)]
    [TestCase("name", ChatTokens.MaxNameLength)]
    [TestCase("picture", ChatTokens.MaxPictureLength)]
    public async Task A_token_whose_subject_name_or_picture_is_one_character_too_long_gets_401_and_one_at_the_limit_is_accepted(string claim, int limit)
    {
        string Token(int length)
        {
            var marker = Guid.NewGuid().ToString("N");
            string Value(string name, string valid) => name == claim ? valid + new string('x', length - valid.Length) : valid;
            return SignedToken(Claims(Value("sub", $"user-{marker}"), Value("name", "Name"), Value("picture", "https://img.example.com/a.png?")));
        }

        Assert.That(await HandshakeStatusAsync(Token(limit + 1)), Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(await HandshakeStatusAsync(Token(limit)), Is.EqualTo(HttpStatusCode.SwitchingProtocols));
    }

    [Test]
    public async Task A_hand_made_token_with_valid_claims_is_accepted()
    {
        // The check on the helper above: the 401s come from the claims, not from the way the token is made.
        var externalId = "hand-made-" + Guid.NewGuid().ToString("N")[..8];
        var token = SignedToken(Claims(externalId, "Hand Made", "https://img.example.com/a.png"));

        await using var socket = await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, token);
        await socket.ReadUntilReadyAsync();

        Assert.That(socket.Welcome.Str("displayName"), Is.EqualTo("Hand Made"));
    }

    [Test]
    public async Task A_refused_handshake_names_the_bearer_scheme_and_an_invalid_token()
    {
        using var http = Gateway.CreateHttpClient();
        using var missing = await http.GetAsync("/ws");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/ws?access_token=not.a.jwt");
        using var invalid = await http.SendAsync(request);

        Assert.That(missing.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(missing.Headers.WwwAuthenticate.ToString(), Is.EqualTo("Bearer"));
        Assert.That(invalid.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(invalid.Headers.WwwAuthenticate.ToString(), Is.EqualTo("Bearer error=\"invalid_token\""));
    }

    [Test]
    public async Task The_HTTP_API_refuses_a_valid_token_in_the_query_string_with_401()
    {
        using var http = Gateway.CreateHttpClient();
        var token = Gateway.TokenFor("query-token");

        using var response = await http.GetAsync("/api/users/me?access_token=" + Uri.EscapeDataString(token));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
    }

    [Test]
    public async Task An_upgrade_asking_for_another_websocket_version_gets_426_naming_version_13()
    {
        using var http = Gateway.CreateHttpClient("old-version");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/ws");
        request.Headers.Connection.Add("Upgrade");
        request.Headers.Upgrade.Add(new System.Net.Http.Headers.ProductHeaderValue("websocket"));
        request.Headers.Add("Sec-WebSocket-Version", "8");
        request.Headers.Add("Sec-WebSocket-Key", Convert.ToBase64String(new byte[16]));

        using var response = await http.SendAsync(request);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.UpgradeRequired));
        Assert.That(response.Headers.GetValues("Sec-WebSocket-Version"), Is.EqualTo(new[] { "13" }));
    }

    [Test]
    public async Task A_plain_http_request_with_a_valid_token_gets_400_saying_to_upgrade_in_plain_text()
    {
        using var http = Gateway.CreateHttpClient("plain-http");
        var response = await http.GetAsync("/ws");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(response.Content.Headers.ContentType?.ToString(), Is.EqualTo("text/plain; charset=utf-8"));
        Assert.That(await response.Content.ReadAsStringAsync(), Is.EqualTo("This endpoint speaks WebSocket only: send an upgrade request."));
    }

    [Test]
    public async Task The_first_connection_creates_the_profile_and_later_ones_update_name_and_avatar()
    {
        var externalId = "profile-" + Guid.NewGuid().ToString("N")[..8];

        await using (var first = await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress,
                         ChatTokens.Issue(Gateway.AuthOptions, externalId, "First Name", "https://img.example.com/1.png", TimeSpan.FromHours(1))))
        {
            await first.ReadUntilReadyAsync();
            Assert.That(first.Welcome.Str("displayName"), Is.EqualTo("First Name"));
        }
        await using (var second = await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress,
                         ChatTokens.Issue(Gateway.AuthOptions, externalId, "Second Name", "https://img.example.com/2.png", TimeSpan.FromHours(1))))
        {
            await second.ReadUntilReadyAsync();
            Assert.That(second.Welcome.Str("displayName"), Is.EqualTo("Second Name"));
        }

        var rows = await Sql.QueryAsync<(string Name, string Avatar)>(
            "SELECT display_name, avatar_url FROM user_profiles WHERE external_id = @externalId", new { externalId });
        Assert.That(rows, Is.EqualTo(new[] { ("Second Name", "https://img.example.com/2.png") }));
    }

    [Test]
    public async Task A_blank_name_or_picture_claim_keeps_the_stored_name_and_avatar()
    {
        var externalId = "blank-" + Guid.NewGuid().ToString("N")[..8];
        await using (var first = await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, Gateway.TokenFor(externalId, "Stored Name", "https://img.example.com/kept.png")))
        {
            await first.ReadUntilReadyAsync();
        }

        await using var blank = await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, SignedToken(Claims(externalId, name: "  ", picture: "")));
        await blank.ReadUntilReadyAsync();

        Assert.That(blank.Welcome.Str("displayName"), Is.EqualTo("Stored Name"));
        var rows = await Sql.QueryAsync<(string Name, string Avatar)>(
            "SELECT display_name, avatar_url FROM user_profiles WHERE external_id = @externalId", new { externalId });
        Assert.That(rows, Is.EqualTo(new[] { ("Stored Name", "https://img.example.com/kept.png") }));
    }

    [Test]
    public async Task A_socket_or_api_request_whose_token_changes_nothing_leaves_the_profile_row_unwritten()
    {
        var externalId = "unchanged-" + Guid.NewGuid().ToString("N")[..8];
        var token = Gateway.TokenFor(externalId, "Same Name", "https://img.example.com/same.png");
        using var http = new HttpClient { BaseAddress = Gateway.HttpAddress };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        Assert.That((await http.GetAsync("/api/users/me")).IsSuccessStatusCode, Is.True);
        // xmin names the transaction that wrote the row version: a write of any kind would change it. (Closing a
        // user's last socket does write last_seen_at, so the socket stays open until the end.)
        var written = await Sql.ScalarAsync<string>("SELECT xmin::text FROM user_profiles WHERE external_id = @externalId", new { externalId });

        await using var socket = await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, token);
        await socket.ReadUntilReadyAsync();
        Assert.That((await http.GetAsync("/api/users/me")).IsSuccessStatusCode, Is.True);
        using var anonymousName = Gateway.CreateHttpClient(externalId);
        Assert.That((await anonymousName.GetAsync("/api/users/me")).IsSuccessStatusCode, Is.True);

        Assert.That(socket.Welcome.Str("displayName"), Is.EqualTo("Same Name"));
        Assert.That(await Sql.ScalarAsync<string>("SELECT xmin::text FROM user_profiles WHERE external_id = @externalId", new { externalId }), Is.EqualTo(written));
    }

    [Test]
    public async Task The_access_token_never_appears_in_a_log_line()
    {
        var token = Gateway.TokenFor("logged-" + Guid.NewGuid().ToString("N")[..8]);
        await using (var client = await ChatTestClient.ConnectAsync(Gateway.WebSocketAddress, token, tokenInQuery: true))
        {
            await client.ReadUntilReadyAsync();
        }
        await HandshakeStatusAsync(token + "tampered", inQuery: true);

        var signature = token.Split('.')[2];
        Assert.That(Gateway.Logs.Lines, Is.Not.Empty);
        Assert.That(Gateway.Logs.Lines.Where(l => l.Contains(signature)), Is.Empty);
    }
}
