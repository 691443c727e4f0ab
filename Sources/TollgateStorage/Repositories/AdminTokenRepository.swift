import Foundation
import Logging
import PostgresNIO
import TollgateDomain

public struct AdminTokenRecord: Sendable, Hashable {
    public var id: UUID
    public var tenantID: UUID?
    public var role: AdminRole
    public var name: String
    public var displayPrefix: String
    public var expiresAt: Date?
    public var lastUsedAt: Date?
    public var revokedAt: Date?
    public var createdBy: UUID?
    public var createdAt: Date

    public init(id: UUID, tenantID: UUID?, role: AdminRole, name: String, displayPrefix: String,
                expiresAt: Date?, lastUsedAt: Date? = nil, revokedAt: Date? = nil, createdBy: UUID?, createdAt: Date = Date()) {
        self.id = id; self.tenantID = tenantID; self.role = role; self.name = name
        self.displayPrefix = displayPrefix; self.expiresAt = expiresAt; self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt; self.createdBy = createdBy; self.createdAt = createdAt
    }

    public func isUsable(at now: Date) -> Bool {
        revokedAt == nil && (expiresAt.map { $0 > now } ?? true)
    }
}

public struct AdminTokenRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    static let columns = """
        id, tenant_id, role, name, display_prefix, expires_at, last_used_at, revoked_at, created_by, created_at,
        (extract(epoch from created_at) * 1000000)::bigint
        """

    public func insert(_ token: AdminTokenRecord, hash: [UInt8], on db: PostgresConnection) async throws -> AdminTokenRecord {
        do {
            let rows = try await db.query("""
                INSERT INTO admin_tokens (id, tenant_id, role, name, token_hash, display_prefix, expires_at, created_by)
                VALUES (\(token.id), \(token.tenantID), \(token.role.rawValue), \(token.name), \(Data(hash)),
                        \(token.displayPrefix), \(token.expiresAt), \(token.createdBy))
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            return try await Self.decode(rows).first!.0
        } catch { throw error.classified() }
    }

    /// The token with this hash if it is neither revoked nor expired; records when it was used
    /// (at most once a minute per token, so authentication stays a cheap read most of the time).
    public func authenticate(hash: [UInt8], on db: PostgresConnection) async throws -> AdminTokenRecord? {
        let rows = try await db.query("""
            SELECT \(unescaped: Self.columns) FROM admin_tokens
            WHERE token_hash = \(Data(hash)) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
            """, logger: logger)
        guard let token = try await Self.decode(rows).first?.0 else { return nil }
        if token.lastUsedAt.map({ Date().timeIntervalSince($0) > 60 }) ?? true {
            try await db.query("UPDATE admin_tokens SET last_used_at = now() WHERE id = \(token.id)", logger: logger)
        }
        return token
    }

    public func get(_ id: UUID, on db: PostgresConnection) async throws -> AdminTokenRecord? {
        let rows = try await db.query("SELECT \(unescaped: Self.columns) FROM admin_tokens WHERE id = \(id)", logger: logger)
        return try await Self.decode(rows).first?.0
    }

    /// Platform tokens when `tenantID` is nil, else that tenant's tokens.
    public func list(tenantID: UUID?, limit: Int, after cursor: PageCursor?, on db: PostgresConnection) async throws -> Page<AdminTokenRecord> {
        let rows = try await db.query("""
            SELECT \(unescaped: Self.columns) FROM admin_tokens
            WHERE tenant_id IS NOT DISTINCT FROM \(tenantID)
              AND (\(cursor == nil) OR (created_at, id) > ('epoch'::timestamptz + \(cursor?.createdAtMicros ?? 0) * interval '1 microsecond', \(cursor?.id ?? UUID.random())))
            ORDER BY created_at, id LIMIT \(limit + 1)
            """, logger: logger)
        return paginate(try await Self.decode(rows), limit: limit, id: \.id)
    }

    public func revoke(_ id: UUID, on db: PostgresConnection) async throws -> AdminTokenRecord? {
        let rows = try await db.query("""
            UPDATE admin_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = \(id)
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        return try await Self.decode(rows).first?.0
    }

    /// Serialises bootstraps in the caller's transaction, so two concurrent runs cannot both mint
    /// the first platform-admin token.
    public func lockBootstrap(on db: PostgresConnection) async throws {
        try await db.query("SELECT pg_advisory_xact_lock(7485)", logger: logger)
    }

    public func countActivePlatformAdmins(on db: PostgresConnection) async throws -> Int {
        let rows = try await db.query("""
            SELECT count(*)::int FROM admin_tokens
            WHERE role = 'platform_admin' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
            """, logger: logger)
        for try await count in rows.decode(Int.self) { return count }
        return 0
    }

    static func decode(_ rows: PostgresRowSequence) async throws -> [(AdminTokenRecord, Int64)] {
        var result: [(AdminTokenRecord, Int64)] = []
        for try await row in rows.decode((UUID, UUID?, String, String, String, Date?, Date?, Date?, UUID?, Date, Int64).self) {
            let (id, tenant, role, name, prefix, expires, lastUsed, revoked, createdBy, created, micros) = row
            result.append((AdminTokenRecord(
                id: id, tenantID: tenant, role: AdminRole(rawValue: role) ?? .tenantViewer, name: name,
                displayPrefix: prefix, expiresAt: expires, lastUsedAt: lastUsed, revokedAt: revoked,
                createdBy: createdBy, createdAt: created), micros))
        }
        return result
    }
}

/// Cuts a `limit + 1` row result into a page and the cursor of its last row.
func paginate<Item: Sendable>(_ rows: [(Item, Int64)], limit: Int, id: KeyPath<Item, UUID>) -> Page<Item> {
    let items = Array(rows.prefix(limit))
    let next = rows.count > limit ? items.last.map { PageCursor(createdAtMicros: $0.1, id: $0.0[keyPath: id]) } : nil
    return Page(items: items.map(\.0), next: next)
}
