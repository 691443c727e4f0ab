import Foundation
import Logging
import PostgresNIO
import TollgateDomain

public struct PriceRecord: Sendable, Hashable {
    public var model: String
    public var currency: Currency
    public var price: Price
    /// nil for platform prices, the tenant's id for its overrides.
    public var tenantID: UUID?
    public var updatedAt: Date
}

public struct PriceRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    static let columns = """
        model, currency, input_per_million_nanos, output_per_million_nanos, cached_input_per_million_nanos,
        per_page_nanos, tenant_id, updated_at
        """

    public func listPlatform(currency: Currency?, on db: PostgresConnection) async throws -> [PriceRecord] {
        let rows = try await db.query("""
            SELECT \(unescaped: Self.columns) FROM prices WHERE tenant_id IS NULL
              AND (\(currency?.rawValue)::text IS NULL OR currency = \(currency?.rawValue))
            ORDER BY model, currency
            """, logger: logger)
        return try await Self.decode(rows)
    }

    /// The prices in force for a tenant in its currency: its overrides, else the platform's.
    public func listEffective(tenantID: UUID, currency: Currency, on db: PostgresConnection) async throws -> [PriceRecord] {
        let rows = try await db.query("""
            SELECT DISTINCT ON (model) \(unescaped: Self.columns) FROM prices
            WHERE currency = \(currency.rawValue) AND (tenant_id IS NULL OR tenant_id = \(tenantID))
            ORDER BY model, tenant_id NULLS LAST
            """, logger: logger)
        return try await Self.decode(rows)
    }

    public func upsert(tenantID: UUID?, model: String, currency: Currency, price: Price, on db: PostgresConnection) async throws -> PriceRecord {
        let rows = try await db.query("""
            INSERT INTO prices (id, tenant_id, model, currency, input_per_million_nanos, output_per_million_nanos,
                cached_input_per_million_nanos, per_page_nanos)
            VALUES (\(UUID.random()), \(tenantID), \(model), \(currency.rawValue), \(price.inputPerMillion.nanos),
                \(price.outputPerMillion.nanos), \(price.cachedInputPerMillion.nanos), \(price.perPage?.nanos))
            ON CONFLICT (tenant_id, model, currency) DO UPDATE SET
                input_per_million_nanos = excluded.input_per_million_nanos,
                output_per_million_nanos = excluded.output_per_million_nanos,
                cached_input_per_million_nanos = excluded.cached_input_per_million_nanos,
                per_page_nanos = excluded.per_page_nanos, updated_at = now()
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        return try await Self.decode(rows)[0]
    }

    /// Returns whether a row was deleted.
    public func delete(tenantID: UUID?, model: String, currency: Currency, on db: PostgresConnection) async throws -> Bool {
        let rows = try await db.query("""
            DELETE FROM prices WHERE tenant_id IS NOT DISTINCT FROM \(tenantID) AND model = \(model)
              AND currency = \(currency.rawValue) RETURNING model
            """, logger: logger)
        var deleted = false
        for try await _ in rows { deleted = true }
        return deleted
    }

    static func decode(_ rows: PostgresRowSequence) async throws -> [PriceRecord] {
        var result: [PriceRecord] = []
        for try await (model, currency, input, output, cached, page, tenant, updated) in
            rows.decode((String, String, Int64, Int64, Int64, Int64?, UUID?, Date).self) {
            result.append(PriceRecord(
                model: model, currency: Currency(rawValue: currency) ?? .usd,
                price: Price(inputPerMillion: Money(nanos: input), outputPerMillion: Money(nanos: output),
                             cachedInputPerMillion: Money(nanos: cached), perPage: page.map(Money.init(nanos:))),
                tenantID: tenant, updatedAt: updated))
        }
        return result
    }
}
