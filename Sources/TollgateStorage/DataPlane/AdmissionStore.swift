import Foundation
import Logging
import PostgresNIO
import TollgateDomain

/// What the proxy asks to reserve before forwarding a request.
public struct ReservationRequest: Sendable {
    public var requestID: UUID
    public var keyID: UUID
    public var hold: Money
    public var tokens: Int64
    public var proxyID: String
    public var ttlSeconds: Int
    public var endpoint: String
    public var model: String?
    public var metadataJSON: String?
    public var traceparent: String?

    public init(requestID: UUID, keyID: UUID, hold: Money, tokens: Int64, proxyID: String, ttlSeconds: Int,
                endpoint: String, model: String?, metadataJSON: String?, traceparent: String?) {
        self.requestID = requestID; self.keyID = keyID; self.hold = hold; self.tokens = tokens; self.proxyID = proxyID
        self.ttlSeconds = ttlSeconds; self.endpoint = endpoint; self.model = model
        self.metadataJSON = metadataJSON; self.traceparent = traceparent
    }
}

public enum LimitScope: String, Sendable { case key, tenant }

public enum ReservationOutcome: Sendable, Equatable {
    case admitted(remainingRequests: Int64?, remainingTokens: Int64?)
    case keyInactive
    case keyExpired
    case tenantSuspended
    case rateLimited(LimitScope, retryAfterMilliseconds: Int64, remainingTokens: Int64?)
    case tokensLimited(LimitScope, retryAfterMilliseconds: Int64)
    case requestTooLarge(LimitScope)
    case concurrencyLimited(LimitScope)
    case budgetExhausted(LimitScope, resetsAt: Date?)
}

/// Calls `tollgate_admit` (`tollgate_reserve`, committed): every limit and both budget holds,
/// checked and charged atomically in one round trip, durable before the answer arrives.
public struct AdmissionStore: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    public func reserve(_ r: ReservationRequest, on db: PostgresConnection) async throws -> ReservationOutcome {
        // A procedure that commits before it answers: the answer means the hold is durable
        // (migrations/0005). Must not run inside an explicit transaction.
        let rows = try await db.query("""
            CALL tollgate_admit(\(r.requestID), \(r.keyID), \(r.hold.nanos), \(r.tokens), \(r.proxyID), \(r.ttlSeconds)::integer,
                                \(r.endpoint), \(r.model), \(r.metadataJSON)::jsonb, \(r.traceparent))
            """, logger: logger)
        for try await row in rows.decode((String, String?, Int64?, Date?, Int64?, Int64?).self) {
            return try Self.outcome(row)
        }
        throw AdmissionError.unknownOutcome("none")
    }

    /// Reserves many requests in one round trip and one commit (`tollgate_reserve_batch`): each is
    /// still checked and charged all or nothing, in the order given. Returns outcomes in that order.
    /// The whole batch fails together (nothing is reserved) if the statement fails, e.g. on a deadlock.
    public func reserve(batch: [ReservationRequest], on db: PostgresConnection) async throws -> [ReservationOutcome] {
        guard let first = batch.first else { return [] }
        // One proxy id and TTL per batch: they are properties of the replica, not of the request.
        let rows = try await db.query("""
            CALL tollgate_admit_batch(\(batch.map(\.requestID)), \(batch.map(\.keyID)), \(batch.map(\.hold.nanos)),
                \(batch.map(\.tokens)), \(first.proxyID), \(first.ttlSeconds)::integer, \(batch.map(\.endpoint)),
                \(batch.map { $0.model ?? "" }), \(batch.map { $0.metadataJSON ?? "" }), \(batch.map { $0.traceparent ?? "" }))
            """, logger: logger)
        for try await (kinds, scopes, retries, resets, requests, tokens) in rows.decode(([String], [String], [Int64], [Int64], [Int64], [Int64]).self) {
            guard kinds.count == batch.count, [scopes.count, retries.count, resets.count, requests.count, tokens.count].allSatisfy({ $0 == kinds.count })
            else { throw AdmissionError.unknownOutcome("\(kinds.count) of \(batch.count) outcomes") }
            // '' and -1 stand for null in the procedure's arrays.
            return try kinds.indices.map { i in
                try Self.outcome((kinds[i], scopes[i].isEmpty ? nil : scopes[i], retries[i] < 0 ? nil : retries[i],
                                  resets[i] < 0 ? nil : Date(timeIntervalSince1970: Double(resets[i]) / 1000),
                                  requests[i] < 0 ? nil : requests[i], tokens[i] < 0 ? nil : tokens[i]))
            }
        }
        throw AdmissionError.unknownOutcome("none")
    }

    /// Takes some of `ticketIDs` as admission tickets for `keyID` (migrations/0006, 0009): holds of
    /// `hold` and `tokens` each, granted by the same rules as a request's, taking at most
    /// 1/`headroom` of what is left of each limit and budget, and none if that is fewer than
    /// `minimum`. Answers after the commit: the tickets are durable.
    public func takeTickets(_ ticketIDs: [UUID], keyID: UUID, hold: Money, tokens: Int64, proxyID: String, ttlSeconds: Int,
                            endpoint: String, model: String?, headroom: Int, minimum: Int, on db: PostgresConnection) async throws -> TicketGrant {
        let rows = try await db.query("""
            CALL tollgate_take_tickets_reporting_room(\(ticketIDs), \(keyID), \(hold.nanos), \(tokens), \(proxyID),
                                       \(Int32(clamping: ttlSeconds)), \(endpoint), \(model), \(Int32(clamping: headroom)),
                                       \(Int32(clamping: minimum)))
            """, logger: logger)
        for try await (ids, validFor, requestsLeft, tokensLeft) in rows.decode(([UUID]?, Int64?, Int64?, Int64?).self) {
            return TicketGrant(ticketIDs: ids ?? [], usableFor: validFor.flatMap { $0 < 0 ? nil : .milliseconds($0) },
                               remainingRequests: requestsLeft, remainingTokens: tokensLeft)
        }
        return TicketGrant(ticketIDs: [], usableFor: nil)
    }

    static func outcome(_ row: (String, String?, Int64?, Date?, Int64?, Int64?)) throws -> ReservationOutcome {
        let (outcome, scopeText, retry, resets, remainingRequests, remainingTokens) = row
        let scope = scopeText.flatMap(LimitScope.init(rawValue:)) ?? .key
        switch outcome {
        case "ok": return .admitted(remainingRequests: remainingRequests, remainingTokens: remainingTokens)
        case "key_inactive": return .keyInactive
        case "key_expired": return .keyExpired
        case "tenant_suspended": return .tenantSuspended
        case "rate_limited": return .rateLimited(scope, retryAfterMilliseconds: retry ?? 1000, remainingTokens: remainingTokens)
        case "tokens_limited": return .tokensLimited(scope, retryAfterMilliseconds: retry ?? 1000)
        case "request_too_large": return .requestTooLarge(scope)
        case "concurrency_limited": return .concurrencyLimited(scope)
        case "budget_exhausted": return .budgetExhausted(scope, resetsAt: resets)
        default: throw AdmissionError.unknownOutcome(outcome)
        }
    }
}

/// Tickets granted to one replica for one key.
public struct TicketGrant: Sendable, Equatable {
    public var ticketIDs: [UUID]
    /// How long from the answer the tickets may be used (until the key expires or a budget window
    /// ends); nil: no such end. A duration, so the proxy's clock need not agree with the database's.
    public var usableFor: Duration?
    /// The key's requests/min and tokens/min left once the tickets were granted (nil: no such
    /// limit, or nothing granted), as an exact admission reports them.
    public var remainingRequests: Int64?
    public var remainingTokens: Int64?

    public init(ticketIDs: [UUID], usableFor: Duration?, remainingRequests: Int64? = nil, remainingTokens: Int64? = nil) {
        self.ticketIDs = ticketIDs
        self.usableFor = usableFor
        self.remainingRequests = remainingRequests
        self.remainingTokens = remainingTokens
    }
}

public enum AdmissionError: Error { case unknownOutcome(String) }
