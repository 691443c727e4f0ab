import Foundation
import Logging
import PostgresNIO
import TollgateDomain

/// The outcome of one request, as the data plane settles it.
public struct Settlement: Sendable, Hashable, Codable {
    public var requestID: UUID
    public var costNanos: Int64
    public var promptTokens: Int
    public var completionTokens: Int
    public var cachedTokens: Int
    public var pages: Int
    public var statusCode: Int
    public var estimated: Bool
    public var credentialID: UUID?
    public var upstreamLatencyMs: Int?
    public var totalLatencyMs: Int?
    /// An unused admission ticket given back whole: nothing charged, no ledger row.
    /// (Optional, like `ledger`, so journals written before tickets existed still read.)
    public var released: Bool?
    /// For a request admitted on a ticket: its own ledger details (the hold's are placeholders).
    public var ledger: LedgerDetail?

    /// `requestID` is the hold's id: a request's own, or the ticket's it was admitted on.
    public init(requestID: UUID, cost: Money, usage: Usage, statusCode: Int, estimated: Bool, credentialID: UUID?,
                upstreamLatencyMs: Int?, totalLatencyMs: Int?, ledger: LedgerDetail? = nil) {
        self.requestID = requestID; self.costNanos = cost.nanos; self.promptTokens = usage.promptTokens
        self.completionTokens = usage.completionTokens; self.cachedTokens = usage.cachedTokens; self.pages = usage.pages
        self.statusCode = statusCode; self.estimated = estimated; self.credentialID = credentialID
        self.upstreamLatencyMs = upstreamLatencyMs; self.totalLatencyMs = totalLatencyMs; self.ledger = ledger
    }

    /// Gives an unused admission ticket back (migrations/0006).
    public static func release(ticket: UUID) -> Settlement {
        var s = Settlement(requestID: ticket, cost: .zero, usage: Usage(), statusCode: 0, estimated: false,
                           credentialID: nil, upstreamLatencyMs: nil, totalLatencyMs: nil)
        s.released = true
        return s
    }

    public var isRelease: Bool { released == true }
    /// Only the batch procedure knows releases and ledger details.
    var needsBatchProcedure: Bool { isRelease || ledger != nil }
}

/// A request's ledger row details, given at settlement when its hold was taken before it existed.
public struct LedgerDetail: Sendable, Hashable, Codable {
    /// The request's id as its client saw it (x-request-id), which its ledger row takes.
    public var requestID: UUID
    public var startedAtMs: Int64
    public var endpoint: String
    public var model: String?
    public var metadataJSON: String?
    public var traceparent: String?

    public init(requestID: UUID, startedAt: Date, endpoint: String, model: String?, metadataJSON: String?, traceparent: String?) {
        self.requestID = requestID; self.startedAtMs = Int64((startedAt.timeIntervalSince1970 * 1000).rounded())
        self.endpoint = endpoint; self.model = model; self.metadataJSON = metadataJSON; self.traceparent = traceparent
    }
}

public struct SettlementResult: Sendable, Equatable {
    /// False when the request had already been settled (a replay): nothing changed.
    public var settled: Bool
    public var overshoot: Money
}

public enum SettlementError: Error { case unexpectedAnswer(Int) }

/// Calls `tollgate_settle` (exactly once per request id) and the reaper of expired holds.
public struct SettlementStore: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    /// Posts one settlement and commits before answering (`tollgate_post_settlement`); must not
    /// run inside an explicit transaction.
    public func settle(_ s: Settlement, on db: PostgresConnection) async throws -> SettlementResult {
        if s.needsBatchProcedure { return try await settle(batch: [s], on: db)[0] }
        let rows = try await db.query("""
            CALL tollgate_post_settlement(\(s.requestID), \(s.costNanos), \(s.promptTokens)::integer,
                \(s.completionTokens)::integer, \(s.cachedTokens)::integer, \(s.pages)::integer, \(s.statusCode)::integer,
                \(s.estimated), \(s.credentialID), \(s.upstreamLatencyMs)::integer, \(s.totalLatencyMs)::integer)
            """, logger: logger)
        for try await (settled, overshoot) in rows.decode((Bool, Int64).self) {
            return SettlementResult(settled: settled, overshoot: Money(nanos: overshoot))
        }
        return SettlementResult(settled: false, overshoot: .zero)
    }

    /// Settles many requests in one round trip and one commit (each still exactly once), locking
    /// their rows in the global order first so batches cannot deadlock with admissions. Answers
    /// after the commit (`tollgate_post_settlements`). Returns the results in the order given.
    public func settle(batch: [Settlement], on db: PostgresConnection) async throws -> [SettlementResult] {
        guard batch.count > 1 || batch.contains(where: \.needsBatchProcedure) else {
            return try await batch.asyncMap { try await settle($0, on: db) }
        }
        // '' and -1 stand for null in the arrays (the driver cannot send nulls in them).
        let rows = try await db.query("""
            CALL tollgate_post_settlements(\(batch.map(\.requestID)), \(batch.map(\.costNanos)), \(batch.map { Int32(clamping: $0.promptTokens) }),
                \(batch.map { Int32(clamping: $0.completionTokens) }), \(batch.map { Int32(clamping: $0.cachedTokens) }), \(batch.map { Int32(clamping: $0.pages) }),
                \(batch.map { Int32(clamping: $0.statusCode) }), \(batch.map(\.estimated)), \(batch.map { $0.credentialID?.apiString ?? "" }),
                \(batch.map { Int32(clamping: $0.upstreamLatencyMs ?? -1) }), \(batch.map { Int32(clamping: $0.totalLatencyMs ?? -1) }),
                \(batch.map(\.isRelease)), \(batch.map { $0.ledger != nil }), \(batch.map { $0.ledger?.requestID ?? $0.requestID }),
                \(batch.map { $0.ledger?.startedAtMs ?? -1 }), \(batch.map { $0.ledger?.endpoint ?? "" }),
                \(batch.map { $0.ledger?.model ?? "" }), \(batch.map { $0.ledger?.metadataJSON ?? "" }),
                \(batch.map { $0.ledger?.traceparent ?? "" }))
            """, logger: logger)
        for try await (settled, overshoot) in rows.decode(([Bool], [Int64]).self) {
            guard settled.count == batch.count, overshoot.count == batch.count else { break }
            return zip(settled, overshoot).map { SettlementResult(settled: $0, overshoot: Money(nanos: $1)) }
        }
        throw SettlementError.unexpectedAnswer(batch.count)
    }

    /// Settles up to `limit` holds whose proxy died, at their reserved amount, marked estimated.
    public func reapExpiredHolds(limit: Int, on db: PostgresConnection) async throws -> Int {
        let rows = try await db.query("SELECT tollgate_reap_expired_holds(\(limit)::integer)", logger: logger)
        for try await count in rows.decode(Int.self) { return count }
        return 0
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        result.reserveCapacity(count)
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
