import Foundation
import Logging
import PostgresNIO
import TollgateDomain

public struct TenantRecord: Sendable, Hashable {
    public var id: UUID
    public var slug: String
    public var name: String
    public var status: TenantStatus
    public var currency: Currency
    public var wrappedDataKey: Data
    public var masterKeyVersion: Int
    public var budget: Budget?
    public var limits: RateLimits
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: UUID, slug: String, name: String, status: TenantStatus, currency: Currency,
                wrappedDataKey: Data, masterKeyVersion: Int, budget: Budget?, limits: RateLimits,
                createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.id = id; self.slug = slug; self.name = name; self.status = status; self.currency = currency
        self.wrappedDataKey = wrappedDataKey; self.masterKeyVersion = masterKeyVersion
        self.budget = budget; self.limits = limits; self.createdAt = createdAt; self.updatedAt = updatedAt
    }
}

public struct TenantRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    static let columns = """
        id, slug, name, status, currency, wrapped_data_key, master_key_version, budget_limit_nanos, budget_period,
        rpm_limit, tpm_limit, max_concurrent, created_at, updated_at, (extract(epoch from created_at) * 1000000)::bigint
        """

    public func insert(_ tenant: TenantRecord, on db: PostgresConnection) async throws -> TenantRecord {
        do {
            let rows = try await db.query("""
                INSERT INTO tenants (id, slug, name, status, currency, wrapped_data_key, master_key_version,
                    budget_limit_nanos, budget_period, rpm_limit, tpm_limit, max_concurrent)
                VALUES (\(tenant.id), \(tenant.slug), \(tenant.name), \(tenant.status.rawValue), \(tenant.currency.rawValue),
                    \(tenant.wrappedDataKey), \(tenant.masterKeyVersion), \(tenant.budget?.limit.nanos),
                    \(tenant.budget?.period.rawValue), \(tenant.limits.requestsPerMinute), \(tenant.limits.tokensPerMinute),
                    \(tenant.limits.maxConcurrent))
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            return try await Self.decode(rows).first!.0
        } catch { throw error.classified() }
    }

    public func get(_ id: UUID, on db: PostgresConnection, forUpdate: Bool = false) async throws -> TenantRecord? {
        let lock = forUpdate ? "FOR UPDATE" : ""
        let rows = try await db.query(
            "SELECT \(unescaped: Self.columns) FROM tenants WHERE id = \(id) \(unescaped: lock)", logger: logger)
        return try await Self.decode(rows).first?.0
    }

    /// `only` restricts the list to one tenant (tenant-scoped tokens see their own tenant only).
    public func list(limit: Int, after cursor: PageCursor?, status: TenantStatus?, only: UUID?,
                     on db: PostgresConnection) async throws -> Page<TenantRecord> {
        let rows = try await db.query("""
            SELECT \(unescaped: Self.columns) FROM tenants
            WHERE (\(cursor == nil) OR (created_at, id) > ('epoch'::timestamptz + \(cursor?.createdAtMicros ?? 0) * interval '1 microsecond', \(cursor?.id ?? UUID.random())))
              AND (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue))
              AND (\(only)::uuid IS NULL OR id = \(only))
            ORDER BY created_at, id
            LIMIT \(limit + 1)
            """, logger: logger)
        return paginate(try await Self.decode(rows), limit: limit, id: \.id)
    }

    public func update(_ id: UUID, name: String?, status: TenantStatus?, on db: PostgresConnection) async throws -> TenantRecord? {
        let rows = try await db.query("""
            UPDATE tenants SET name = coalesce(\(name), name), status = coalesce(\(status?.rawValue), status), updated_at = now()
            WHERE id = \(id) RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        return try await Self.decode(rows).first?.0
    }

    public func setBudget(_ id: UUID, _ budget: Budget?, on db: PostgresConnection) async throws -> TenantRecord? {
        let rows = try await db.query("""
            UPDATE tenants SET budget_limit_nanos = \(budget?.limit.nanos), budget_period = \(budget?.period.rawValue),
                updated_at = now()
            WHERE id = \(id) RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        return try await Self.decode(rows).first?.0
    }

    public func setLimits(_ id: UUID, _ limits: RateLimits, on db: PostgresConnection) async throws -> TenantRecord? {
        let rows = try await db.query("""
            UPDATE tenants SET rpm_limit = \(limits.requestsPerMinute), tpm_limit = \(limits.tokensPerMinute),
                max_concurrent = \(limits.maxConcurrent), updated_at = now()
            WHERE id = \(id) RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        return try await Self.decode(rows).first?.0
    }

    /// How many tenant data keys each master key version wraps.
    public func countByMasterKeyVersion(on db: PostgresConnection) async throws -> [Int: Int64] {
        let rows = try await db.query(
            "SELECT master_key_version, count(*) FROM tenants GROUP BY master_key_version", logger: logger)
        var result: [Int: Int64] = [:]
        for try await (version, count) in rows.decode((Int, Int64).self) { result[version] = count }
        return result
    }

    /// Tenants whose data key is wrapped by another version than `primary`, locked for rewrapping.
    public func wrappedKeysNotUnder(version primary: Int, limit: Int, on db: PostgresConnection) async throws -> [(UUID, Data)] {
        let rows = try await db.query("""
            SELECT id, wrapped_data_key FROM tenants WHERE master_key_version <> \(primary)
            ORDER BY id LIMIT \(limit) FOR UPDATE
            """, logger: logger)
        var result: [(UUID, Data)] = []
        for try await (id, wrapped) in rows.decode((UUID, Data).self) { result.append((id, wrapped)) }
        return result
    }

    public func storeWrappedKey(_ id: UUID, wrapped: Data, version: Int, on db: PostgresConnection) async throws {
        try await db.query("""
            UPDATE tenants SET wrapped_data_key = \(wrapped), master_key_version = \(version) WHERE id = \(id)
            """, logger: logger)
    }

    static func decode(_ rows: PostgresRowSequence) async throws -> [(TenantRecord, Int64)] {
        var result: [(TenantRecord, Int64)] = []
        for try await row in rows.decode((UUID, String, String, String, String, Data, Int, Int64?, String?, Int?, Int?, Int?, Date, Date, Int64).self) {
            let (id, slug, name, status, currency, wrapped, version, budgetNanos, period, rpm, tpm, conc, created, updated, micros) = row
            let budget = budgetNanos.flatMap { nanos in
                period.flatMap(BudgetPeriod.init(rawValue:)).map { Budget(limit: Money(nanos: nanos), period: $0) }
            }
            result.append((TenantRecord(
                id: id, slug: slug, name: name, status: TenantStatus(rawValue: status) ?? .suspended,
                currency: Currency(rawValue: currency) ?? .eur, wrappedDataKey: wrapped, masterKeyVersion: version,
                budget: budget, limits: RateLimits(requestsPerMinute: rpm, tokensPerMinute: tpm, maxConcurrent: conc),
                createdAt: created, updatedAt: updated), micros))
        }
        return result
    }
}
