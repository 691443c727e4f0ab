import Foundation
import Logging
import PostgresNIO
import TollgateDomain

public struct VirtualKeyRecord: Sendable, Hashable {
    public var id: UUID
    public var tenantID: UUID
    public var name: String
    /// Stored status: active or revoked. Use `status(at:)` for what to show.
    public var revoked: Bool
    public var displayPrefix: String
    public var expiresAt: Date?
    public var allowedModels: [String]
    public var allowedEndpoints: [String]
    public var credentialIDs: [UUID]
    /// JSON object text.
    public var metadataJSON: String
    public var budget: Budget?
    public var limits: RateLimits
    public var defaultMaxTokens: Int?
    public var revokedAt: Date?
    public var previousSecretValidUntil: Date?
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: UUID, tenantID: UUID, name: String, revoked: Bool = false, displayPrefix: String, expiresAt: Date?,
                allowedModels: [String], allowedEndpoints: [String], credentialIDs: [UUID], metadataJSON: String,
                budget: Budget?, limits: RateLimits, defaultMaxTokens: Int?, revokedAt: Date? = nil,
                previousSecretValidUntil: Date? = nil, createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.id = id; self.tenantID = tenantID; self.name = name; self.revoked = revoked
        self.displayPrefix = displayPrefix; self.expiresAt = expiresAt; self.allowedModels = allowedModels
        self.allowedEndpoints = allowedEndpoints; self.credentialIDs = credentialIDs; self.metadataJSON = metadataJSON
        self.budget = budget; self.limits = limits; self.defaultMaxTokens = defaultMaxTokens; self.revokedAt = revokedAt
        self.previousSecretValidUntil = previousSecretValidUntil; self.createdAt = createdAt; self.updatedAt = updatedAt
    }

    public func status(at now: Date) -> KeyStatus {
        if revoked { return .revoked }
        if let expiresAt, expiresAt <= now { return .expired }
        return .active
    }
}

/// Fields a key update may change; nil leaves a field as it is.
public struct VirtualKeyChanges: Sendable {
    public var name: String?
    public var expiresAt: Date?
    public var allowedModels: [String]?
    public var allowedEndpoints: [String]?
    public var credentialIDs: [UUID]?
    public var metadataJSON: String?
    public var defaultMaxTokens: Int?
    public init() {}
}

public struct VirtualKeyRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    static let columns = """
        k.id, k.tenant_id, k.name, k.status, k.display_prefix, k.expires_at, k.allowed_models, k.allowed_endpoints,
        k.credential_ids, k.metadata::text, k.budget_limit_nanos, k.budget_period, k.rpm_limit, k.tpm_limit,
        k.max_concurrent, k.default_max_tokens, k.revoked_at,
        (SELECT max(s.valid_until) FROM virtual_key_secrets s WHERE s.key_id = k.id AND s.valid_until > now()),
        k.created_at, k.updated_at, (extract(epoch from k.created_at) * 1000000)::bigint
        """

    public func insert(_ k: VirtualKeyRecord, secretHash: [UInt8], on db: PostgresConnection) async throws -> VirtualKeyRecord {
        do {
            try await db.query("""
                INSERT INTO virtual_keys (id, tenant_id, name, status, display_prefix, expires_at, allowed_models,
                    allowed_endpoints, credential_ids, metadata, budget_limit_nanos, budget_period, rpm_limit, tpm_limit,
                    max_concurrent, default_max_tokens)
                VALUES (\(k.id), \(k.tenantID), \(k.name), 'active', \(k.displayPrefix), \(k.expiresAt), \(k.allowedModels),
                    \(k.allowedEndpoints), \(k.credentialIDs), \(k.metadataJSON)::jsonb, \(k.budget?.limit.nanos),
                    \(k.budget?.period.rawValue), \(k.limits.requestsPerMinute), \(k.limits.tokensPerMinute),
                    \(k.limits.maxConcurrent), \(k.defaultMaxTokens))
                """, logger: logger)
            try await db.query("""
                INSERT INTO virtual_key_secrets (key_hash, key_id, tenant_id, display_prefix)
                VALUES (\(Data(secretHash)), \(k.id), \(k.tenantID), \(k.displayPrefix))
                """, logger: logger)
        } catch { throw error.classified() }
        return try await get(tenantID: k.tenantID, id: k.id, on: db)!
    }

    public func get(tenantID: UUID, id: UUID, on db: PostgresConnection, forUpdate: Bool = false) async throws -> VirtualKeyRecord? {
        let lock = forUpdate ? "FOR UPDATE OF k" : ""
        let rows = try await db.query("""
            SELECT \(unescaped: Self.columns) FROM virtual_keys k WHERE k.tenant_id = \(tenantID) AND k.id = \(id) \(unescaped: lock)
            """, logger: logger)
        return try await Self.decode(rows).first?.0
    }

    public func list(tenantID: UUID, status: KeyStatus?, namePrefix: String?, limit: Int, after cursor: PageCursor?,
                     on db: PostgresConnection) async throws -> Page<VirtualKeyRecord> {
        let escapedPrefix = namePrefix.map { $0.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%" }
        let rows = try await db.query("""
            SELECT \(unescaped: Self.columns) FROM virtual_keys k
            WHERE k.tenant_id = \(tenantID)
              AND (\(cursor == nil) OR (k.created_at, k.id) > ('epoch'::timestamptz + \(cursor?.createdAtMicros ?? 0) * interval '1 microsecond', \(cursor?.id ?? UUID.random())))
              AND (\(escapedPrefix)::text IS NULL OR k.name LIKE \(escapedPrefix))
              AND CASE \(status?.rawValue)::text
                    WHEN 'revoked' THEN k.status = 'revoked'
                    WHEN 'expired' THEN k.status = 'active' AND k.expires_at <= now()
                    WHEN 'active' THEN k.status = 'active' AND (k.expires_at IS NULL OR k.expires_at > now())
                    ELSE true END
            ORDER BY k.created_at, k.id LIMIT \(limit + 1)
            """, logger: logger)
        return paginate(try await Self.decode(rows), limit: limit, id: \.id)
    }

    public func update(tenantID: UUID, id: UUID, _ c: VirtualKeyChanges, on db: PostgresConnection) async throws -> VirtualKeyRecord? {
        let rows = try await db.query("""
            UPDATE virtual_keys SET name = coalesce(\(c.name), name), expires_at = coalesce(\(c.expiresAt), expires_at),
                allowed_models = coalesce(\(c.allowedModels), allowed_models),
                allowed_endpoints = coalesce(\(c.allowedEndpoints), allowed_endpoints),
                credential_ids = coalesce(\(c.credentialIDs), credential_ids),
                metadata = coalesce(\(c.metadataJSON)::jsonb, metadata),
                default_max_tokens = coalesce(\(c.defaultMaxTokens), default_max_tokens), updated_at = now()
            WHERE tenant_id = \(tenantID) AND id = \(id) RETURNING id
            """, logger: logger)
        for try await _ in rows {}
        return try await get(tenantID: tenantID, id: id, on: db)
    }

    public func setBudget(tenantID: UUID, id: UUID, _ budget: Budget?, on db: PostgresConnection) async throws -> VirtualKeyRecord? {
        try await db.query("""
            UPDATE virtual_keys SET budget_limit_nanos = \(budget?.limit.nanos), budget_period = \(budget?.period.rawValue),
                updated_at = now() WHERE tenant_id = \(tenantID) AND id = \(id)
            """, logger: logger)
        return try await get(tenantID: tenantID, id: id, on: db)
    }

    public func setLimits(tenantID: UUID, id: UUID, _ limits: RateLimits, on db: PostgresConnection) async throws -> VirtualKeyRecord? {
        try await db.query("""
            UPDATE virtual_keys SET rpm_limit = \(limits.requestsPerMinute), tpm_limit = \(limits.tokensPerMinute),
                max_concurrent = \(limits.maxConcurrent), updated_at = now() WHERE tenant_id = \(tenantID) AND id = \(id)
            """, logger: logger)
        return try await get(tenantID: tenantID, id: id, on: db)
    }

    /// Adds a new secret and limits every older one to `graceSeconds` from now (0 = invalid at once).
    public func rotate(tenantID: UUID, id: UUID, newHash: [UInt8], displayPrefix: String, graceSeconds: Int,
                       on db: PostgresConnection) async throws -> VirtualKeyRecord? {
        guard try await get(tenantID: tenantID, id: id, on: db, forUpdate: true) != nil else { return nil }
        try await db.query("""
            UPDATE virtual_key_secrets
            SET valid_until = least(coalesce(valid_until, 'infinity'), now() + \(graceSeconds) * interval '1 second')
            WHERE key_id = \(id)
            """, logger: logger)
        try await db.query("""
            INSERT INTO virtual_key_secrets (key_hash, key_id, tenant_id, display_prefix)
            VALUES (\(Data(newHash)), \(id), \(tenantID), \(displayPrefix))
            """, logger: logger)
        try await db.query("""
            UPDATE virtual_keys SET display_prefix = \(displayPrefix), updated_at = now() WHERE id = \(id)
            """, logger: logger)
        return try await get(tenantID: tenantID, id: id, on: db)
    }

    public func revoke(tenantID: UUID, id: UUID, on db: PostgresConnection) async throws -> VirtualKeyRecord? {
        try await db.query("""
            UPDATE virtual_keys SET status = 'revoked', revoked_at = coalesce(revoked_at, now()), updated_at = now()
            WHERE tenant_id = \(tenantID) AND id = \(id)
            """, logger: logger)
        return try await get(tenantID: tenantID, id: id, on: db)
    }

    static func decode(_ rows: PostgresRowSequence) async throws -> [(VirtualKeyRecord, Int64)] {
        var result: [(VirtualKeyRecord, Int64)] = []
        for try await row in rows.decode((UUID, UUID, String, String, String, Date?, [String], [String], [UUID], String,
                                          Int64?, String?, Int?, Int?, Int?, Int?, Date?, Date?, Date, Date, Int64).self) {
            let (id, tenant, name, status, prefix, expires, models, endpoints, creds, metadata, budgetNanos, period,
                 rpm, tpm, conc, maxTokens, revokedAt, previousUntil, created, updated, micros) = row
            let budget = budgetNanos.flatMap { nanos in
                period.flatMap(BudgetPeriod.init(rawValue:)).map { Budget(limit: Money(nanos: nanos), period: $0) }
            }
            result.append((VirtualKeyRecord(
                id: id, tenantID: tenant, name: name, revoked: status == "revoked", displayPrefix: prefix,
                expiresAt: expires, allowedModels: models, allowedEndpoints: endpoints, credentialIDs: creds,
                metadataJSON: metadata, budget: budget,
                limits: RateLimits(requestsPerMinute: rpm, tokensPerMinute: tpm, maxConcurrent: conc),
                defaultMaxTokens: maxTokens, revokedAt: revokedAt, previousSecretValidUntil: previousUntil,
                createdAt: created, updatedAt: updated), micros))
        }
        return result
    }
}
