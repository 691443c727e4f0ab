import Foundation
import Logging
import PostgresNIO
import TollgateDomain

public enum UsageGrouping: String, Sendable, CaseIterable {
    case key, model, day
}

public struct UsageAggregate: Sendable, Hashable {
    public var group: String
    public var requests: Int64
    public var promptTokens: Int64
    public var completionTokens: Int64
    public var cachedTokens: Int64
    public var cost: Money
    public var estimatedRequests: Int64

    public init(group: String, requests: Int64, promptTokens: Int64, completionTokens: Int64, cachedTokens: Int64,
                cost: Money, estimatedRequests: Int64) {
        self.group = group; self.requests = requests; self.promptTokens = promptTokens
        self.completionTokens = completionTokens; self.cachedTokens = cachedTokens; self.cost = cost
        self.estimatedRequests = estimatedRequests
    }
}

/// One settled request, as written by the data plane.
public struct LedgerRow: Sendable, Hashable {
    public var requestID: UUID
    public var startedAt: Date
    public var tenantID: UUID
    public var keyID: UUID
    public var credentialID: UUID?
    public var endpoint: String
    public var model: String?
    public var usage: Usage
    public var cost: Money
    public var currency: Currency
    public var statusCode: Int
    public var estimated: Bool
    public var upstreamLatencyMs: Int?
    public var totalLatencyMs: Int?
    public var metadataJSON: String?
    public var traceparent: String?

    public init(requestID: UUID, startedAt: Date, tenantID: UUID, keyID: UUID, credentialID: UUID?, endpoint: String,
                model: String?, usage: Usage, cost: Money, currency: Currency, statusCode: Int, estimated: Bool,
                upstreamLatencyMs: Int? = nil, totalLatencyMs: Int? = nil, metadataJSON: String? = nil, traceparent: String? = nil) {
        self.requestID = requestID; self.startedAt = startedAt; self.tenantID = tenantID; self.keyID = keyID
        self.credentialID = credentialID; self.endpoint = endpoint; self.model = model; self.usage = usage
        self.cost = cost; self.currency = currency; self.statusCode = statusCode; self.estimated = estimated
        self.upstreamLatencyMs = upstreamLatencyMs; self.totalLatencyMs = totalLatencyMs
        self.metadataJSON = metadataJSON; self.traceparent = traceparent
    }
}

public struct UsageRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    /// Creates the ledger's monthly partitions from this month to `monthsAhead` months ahead.
    public func ensurePartitions(monthsAhead: Int, on db: PostgresConnection) async throws {
        try await db.query("SELECT tollgate_ensure_ledger_partitions(\(monthsAhead)::integer)", logger: logger)
    }

    /// Inserts a ledger row; returns false when the request id was already recorded (exactly once).
    @discardableResult
    public func record(_ row: LedgerRow, on db: PostgresConnection) async throws -> Bool {
        let rows = try await db.query("""
            INSERT INTO usage_ledger (request_id, started_at, tenant_id, key_id, credential_id, endpoint, model,
                prompt_tokens, completion_tokens, cached_tokens, pages, cost_nanos, currency, status_code, estimated,
                upstream_latency_ms, total_latency_ms, metadata, traceparent)
            VALUES (\(row.requestID), \(row.startedAt), \(row.tenantID), \(row.keyID), \(row.credentialID), \(row.endpoint),
                \(row.model), \(row.usage.promptTokens), \(row.usage.completionTokens), \(row.usage.cachedTokens),
                \(row.usage.pages), \(row.cost.nanos), \(row.currency.rawValue), \(row.statusCode), \(row.estimated),
                \(row.upstreamLatencyMs), \(row.totalLatencyMs), \(row.metadataJSON)::jsonb, \(row.traceparent))
            ON CONFLICT DO NOTHING RETURNING request_id
            """, logger: logger)
        var inserted = false
        for try await _ in rows { inserted = true }
        return inserted
    }

    public func aggregate(tenantID: UUID, from: Date, to: Date, groupBy: UsageGrouping, keyID: UUID?,
                          on db: PostgresConnection) async throws -> [UsageAggregate] {
        let groupExpression = switch groupBy {
        case .key: "key_id::text"
        case .model: "coalesce(model, '')"
        case .day: "to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        }
        let rows = try await db.query("""
            SELECT \(unescaped: groupExpression) AS g, count(*), coalesce(sum(prompt_tokens), 0)::bigint,
                coalesce(sum(completion_tokens), 0)::bigint, coalesce(sum(cached_tokens), 0)::bigint,
                coalesce(sum(cost_nanos), 0)::bigint, count(*) FILTER (WHERE estimated)
            FROM usage_ledger
            WHERE tenant_id = \(tenantID) AND started_at >= \(from) AND started_at < \(to)
              AND (\(keyID)::uuid IS NULL OR key_id = \(keyID))
            GROUP BY g ORDER BY g
            """, logger: logger)
        var result: [UsageAggregate] = []
        for try await (group, requests, prompt, completion, cached, cost, estimated) in
            rows.decode((String, Int64, Int64, Int64, Int64, Int64, Int64).self) {
            result.append(UsageAggregate(group: group, requests: requests, promptTokens: prompt, completionTokens: completion,
                                         cachedTokens: cached, cost: Money(nanos: cost), estimatedRequests: estimated))
        }
        return result
    }

    /// Streams ledger rows of a time range, oldest first, to `consume` (CSV export).
    public func export(tenantID: UUID, from: Date, to: Date, on db: PostgresConnection,
                       consume: (LedgerRow) throws -> Void) async throws {
        let rows = try await db.query("""
            SELECT request_id, started_at, tenant_id, key_id, credential_id, endpoint, model, prompt_tokens,
                completion_tokens, cached_tokens, pages, cost_nanos, currency, status_code, estimated,
                upstream_latency_ms, total_latency_ms, metadata::text, traceparent
            FROM usage_ledger
            WHERE tenant_id = \(tenantID) AND started_at >= \(from) AND started_at < \(to)
            ORDER BY started_at, request_id
            """, logger: logger)
        for try await r in rows.decode((UUID, Date, UUID, UUID, UUID?, String, String?, Int, Int, Int, Int, Int64, String,
                                        Int, Bool, Int?, Int?, String?, String?).self) {
            try consume(LedgerRow(
                requestID: r.0, startedAt: r.1, tenantID: r.2, keyID: r.3, credentialID: r.4, endpoint: r.5, model: r.6,
                usage: Usage(promptTokens: r.7, completionTokens: r.8, cachedTokens: r.9, pages: r.10),
                cost: Money(nanos: r.11), currency: Currency(rawValue: r.12) ?? .usd, statusCode: r.13, estimated: r.14,
                upstreamLatencyMs: r.15, totalLatencyMs: r.16, metadataJSON: r.17, traceparent: r.18))
        }
    }
}
