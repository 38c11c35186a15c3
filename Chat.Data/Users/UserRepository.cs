using Dapper;
using Npgsql;

namespace Chat.Data.Users;

public sealed class UserRepository(NpgsqlDataSource dataSource, DatabaseResilience resilience)
{
    // Creates the profile on a user's first connection (named after the external id when the token has no
    // name); later connections refresh name and avatar from the token, each only when the token carries it.
    // A profile the token leaves as it is gets no write at all: this runs for every socket and every API request,
    // and an unconditional ON CONFLICT DO UPDATE wrote a new row version (and its WAL) each time. When the
    // snapshot shows no profile and a concurrent first connection inserts one meanwhile, ON CONFLICT updates
    // that one instead.
    private const string UpsertFromClaimsSql = """
        WITH current AS (
            SELECT id, external_id, display_name, avatar_url, last_seen_at
            FROM user_profiles WHERE external_id = @ExternalId
        ), upserted AS (
            INSERT INTO user_profiles (external_id, display_name, avatar_url)
            SELECT @ExternalId, COALESCE(@DisplayName, @ExternalId), @AvatarUrl
            WHERE NOT EXISTS (SELECT 1 FROM current c
                              WHERE c.display_name = COALESCE(@DisplayName, c.display_name)
                                AND c.avatar_url IS NOT DISTINCT FROM COALESCE(@AvatarUrl, c.avatar_url))
            ON CONFLICT (external_id) DO UPDATE
                SET display_name = COALESCE(@DisplayName, user_profiles.display_name),
                    avatar_url = COALESCE(EXCLUDED.avatar_url, user_profiles.avatar_url)
            RETURNING id, external_id, display_name, avatar_url, last_seen_at
        ), profile AS (
            SELECT * FROM upserted
            UNION ALL
            SELECT * FROM current WHERE NOT EXISTS (SELECT 1 FROM upserted)
        )
        SELECT id AS Id, external_id AS ExternalId, display_name AS DisplayName,
               avatar_url AS AvatarUrl, last_seen_at AS LastSeenAt
        FROM profile
        """;

    public Task<UserProfile> UpsertFromClaimsAsync(string externalId, string? displayName, string? avatarUrl, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            return await connection.QuerySingleAsync<UserProfile>(new CommandDefinition(
                UpsertFromClaimsSql, new { ExternalId = externalId, DisplayName = displayName, AvatarUrl = avatarUrl }, cancellationToken: ct));
        }, cancellationToken).AsTask();

    private const string SetLastSeenSql = "UPDATE user_profiles SET last_seen_at = now() WHERE id = @UserId";

    public Task SetLastSeenAsync(long userId, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            return await connection.ExecuteAsync(new CommandDefinition(SetLastSeenSql, new { UserId = userId }, cancellationToken: ct));
        }, cancellationToken).AsTask();

    private const string FindByExternalIdSql = """
        SELECT id AS Id, external_id AS ExternalId, display_name AS DisplayName,
               avatar_url AS AvatarUrl, last_seen_at AS LastSeenAt
        FROM user_profiles WHERE external_id = @ExternalId
        """;

    public Task<UserProfile?> FindByExternalIdAsync(string externalId, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync(async ct =>
        {
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            return await connection.QuerySingleOrDefaultAsync<UserProfile>(new CommandDefinition(
                FindByExternalIdSql, new { ExternalId = externalId }, cancellationToken: ct));
        }, cancellationToken).AsTask();

    // Users named as members before they ever connected get a placeholder profile: their external id as the
    // name, replaced by the token's name on their first connection or request. Profiles that exist are read, not
    // written (no row version, no row lock, no identity value spent on an insert that conflicts). A profile that
    // a concurrent request inserts after this statement's snapshot is neither inserted (ON CONFLICT) nor seen:
    // the caller runs the statement again, and the next snapshot sees it.
    private const string EnsureProfilesSql = """
        WITH wanted AS (
            SELECT DISTINCT external_id FROM unnest(@ExternalIds::text[]) AS w(external_id)
        ), existing AS (
            SELECT u.* FROM user_profiles u JOIN wanted w ON w.external_id = u.external_id
        ), inserted AS (
            INSERT INTO user_profiles (external_id, display_name)
            SELECT external_id, external_id FROM wanted
            WHERE NOT EXISTS (SELECT 1 FROM existing e WHERE e.external_id = wanted.external_id)
            ORDER BY external_id
            ON CONFLICT (external_id) DO NOTHING
            RETURNING *
        )
        SELECT id AS Id, external_id AS ExternalId, display_name AS DisplayName, avatar_url AS AvatarUrl, last_seen_at AS LastSeenAt
        FROM existing
        UNION ALL
        SELECT id, external_id, display_name, avatar_url, last_seen_at FROM inserted
        """;

    /// <summary>The profiles of the given external ids, creating placeholders for those who have none.</summary>
    public Task<IReadOnlyList<UserProfile>> EnsureProfilesAsync(IReadOnlyCollection<string> externalIds, CancellationToken cancellationToken) =>
        resilience.ExecuteAsync<IReadOnlyList<UserProfile>>(async ct =>
        {
            // Retrying is safe: the insert skips profiles that exist.
            await using var connection = await dataSource.OpenConnectionAsync(ct);
            var wanted = externalIds.Distinct().Count();
            // Each pass sees the profiles that concurrent requests committed before it: a second pass finds them.
            for (var pass = 1; ; pass++)
            {
                var rows = (await connection.QueryAsync<UserProfile>(new CommandDefinition(
                    EnsureProfilesSql, new { ExternalIds = externalIds.ToArray() }, cancellationToken: ct))).AsList();
                if (rows.Count == wanted)
                {
                    return rows;
                }
                if (pass == 3)
                {
                    throw new InvalidOperationException($"{wanted} profiles were asked for and {rows.Count} found after {pass} passes.");
                }
            }
        }, cancellationToken).AsTask();
}
