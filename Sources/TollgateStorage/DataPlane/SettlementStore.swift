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

    public init(requestID: UUID, cost: Money, usage: Usage, statusCode: Int, estimated: Bool, credentialID: UUID?,
                upstreamLatencyMs: Int?, totalLatencyMs: Int?) {
        self.requestID = requestID; self.costNanos = cost.nanos; self.promptTokens = usage.promptTokens
        self.completionTokens = usage.completionTokens; self.cachedTokens = usage.cachedTokens; self.pages = usage.pages
        self.statusCode = statusCode; self.estimated = estimated; self.credentialID = credentialID
        self.upstreamLatencyMs = upstreamLatencyMs; self.totalLatencyMs = totalLatencyMs
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
        let rows = try await db.execute(PostOne(settlement: s), logger: logger)
        for try await (settled, overshoot) in rows {
            return SettlementResult(settled: settled, overshoot: Money(nanos: overshoot))
        }
        return SettlementResult(settled: false, overshoot: .zero)
    }

    /// Settles many requests in one round trip and one commit (each still exactly once), locking
    /// their rows in the global order first so batches cannot deadlock with admissions. Answers
    /// after the commit (`tollgate_post_settlements`). Returns the results in the order given.
    public func settle(batch: [Settlement], on db: PostgresConnection) async throws -> [SettlementResult] {
        guard batch.count > 1 else { return try await batch.asyncMap { try await settle($0, on: db) } }
        let rows = try await db.execute(PostBatch(batch: batch), logger: logger)
        for try await (settled, overshoot) in rows {
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

// The settlement calls, prepared once per connection, for the same reasons as admission's
// (AdmitOne): less work per call, and fixed parameter types.

struct PostOne: PostgresPreparedStatement {
    static let name = "tollgate_post_settlement_v1"
    static let sql = """
        CALL tollgate_post_settlement($1, $2, $3::integer, $4::integer, $5::integer, $6::integer, $7::integer, $8, $9,
                                      $10::integer, $11::integer)
        """
    static let bindingDataTypes: [PostgresDataType] = [.uuid, .int8, .int8, .int8, .int8, .int8, .int8, .bool, .uuid, .int8, .int8]
    typealias Row = (Bool, Int64)

    let settlement: Settlement

    func makeBindings() throws -> PostgresBindings {
        let s = settlement
        var b = PostgresBindings()
        b.append(s.requestID); b.append(s.costNanos); b.append(Int64(s.promptTokens)); b.append(Int64(s.completionTokens))
        b.append(Int64(s.cachedTokens)); b.append(Int64(s.pages)); b.append(Int64(s.statusCode)); b.append(s.estimated)
        b.append(s.credentialID); b.append(s.upstreamLatencyMs.map(Int64.init)); b.append(s.totalLatencyMs.map(Int64.init))
        return b
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// '' stands for a null credential id, -1 for a null latency.
struct PostBatch: PostgresPreparedStatement {
    static let name = "tollgate_post_settlements_v1"
    static let sql = "CALL tollgate_post_settlements($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    static let bindingDataTypes: [PostgresDataType] = [.uuidArray, .int8Array, .int4Array, .int4Array, .int4Array, .int4Array,
                                                       .int4Array, .boolArray, .textArray, .int4Array, .int4Array]
    typealias Row = ([Bool], [Int64])

    let batch: [Settlement]

    func makeBindings() throws -> PostgresBindings {
        var b = PostgresBindings()
        b.append(batch.map(\.requestID)); b.append(batch.map(\.costNanos))
        b.append(batch.map { Int32(clamping: $0.promptTokens) }); b.append(batch.map { Int32(clamping: $0.completionTokens) })
        b.append(batch.map { Int32(clamping: $0.cachedTokens) }); b.append(batch.map { Int32(clamping: $0.pages) })
        b.append(batch.map { Int32(clamping: $0.statusCode) }); b.append(batch.map(\.estimated))
        b.append(batch.map { $0.credentialID?.uuidString ?? "" })
        b.append(batch.map { Int32(clamping: $0.upstreamLatencyMs ?? -1) }); b.append(batch.map { Int32(clamping: $0.totalLatencyMs ?? -1) })
        return b
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        result.reserveCapacity(count)
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
