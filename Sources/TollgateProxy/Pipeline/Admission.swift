import Foundation
import PostgresNIO
import TollgateDomain
import TollgateStorage

/// Stage 3: limits and the budget hold, in one atomic database round trip, durable before anything
/// is forwarded. Behind a protocol so the strategy can change (e.g. coalescing concurrent holds of
/// one hot key into one statement) without touching the other stages.
protocol AdmissionGate: Sendable {
    func admit(_ request: ReservationRequest) async throws -> ReservationOutcome
    /// The outcome and the hold the request settles under (its own, or a ticket it took).
    func admission(for request: ReservationRequest) async throws -> Admission
}

extension AdmissionGate {
    func admission(for request: ReservationRequest) async throws -> Admission {
        Admission(outcome: try await admit(request), holdID: request.requestID, onTicket: false)
    }
}

/// What admission decided for one request.
struct Admission: Sendable {
    var outcome: ReservationOutcome
    /// The hold that settles this request: its own id, or the ticket's it was admitted on.
    var holdID: UUID
    /// Admitted on a ticket (`TicketedAdmissionGate`): the settlement carries the request's ledger details.
    var onTicket: Bool
}

/// Admission against Postgres, coalescing concurrent requests: while `maxConcurrentBatches` round
/// trips are in flight, new arrivals wait and go together in the next one (`tollgate_reserve_batch`:
/// one statement, one commit, each request still all or nothing, in arrival order).
///
/// Why: on a hot key every admission locks the same rows until its commit, so one statement per
/// request caps a key at roughly one commit per request (~2,000/s on a small machine). Batching
/// costs nothing at low load (a request that finds a free slot goes alone, at once) and grows with
/// the load. Every request still waits for the commit that covers it: nothing is forwarded before
/// its hold is durable.
final class PostgresAdmissionGate: AdmissionGate {
    let database: Database
    let store: AdmissionStore
    let maxConcurrentBatches: Int
    /// Most requests reserved in one statement; larger queues go in several.
    let maxBatch: Int

    private struct Waiter {
        let request: ReservationRequest
        let continuation: CheckedContinuation<ReservationOutcome, any Error>
    }
    private struct State {
        var waiting: [Waiter] = []
        var inFlight = 0
    }
    private let state = Locked(State())

    /// This replica's settlements still being posted, and how long a refusal they could relax
    /// waits for them (nil: no second try).
    let pendingSettlements: SettlementQueue?
    let pendingSettlementWait: Duration

    /// How long a key's refusal, confirmed by a second try, spares its next refusals one.
    let confirmedRefusalMemory: Duration

    init(database: Database, store: AdmissionStore, pendingSettlements: SettlementQueue? = nil,
         pendingSettlementWait: Duration = .seconds(1), confirmedRefusalMemory: Duration = .seconds(1),
         maxConcurrentBatches: Int = 2, maxBatch: Int = 128) {
        self.confirmedRefusalMemory = confirmedRefusalMemory
        self.database = database
        self.store = store
        self.pendingSettlements = pendingSettlements
        self.pendingSettlementWait = pendingSettlementWait
        self.maxConcurrentBatches = max(1, maxConcurrentBatches)
        self.maxBatch = max(1, maxBatch)
    }

    /// A refusal that a settlement still on its way could relax gets one more try: a client that
    /// waits for each response before sending the next must not be refused because its previous
    /// request's slot, unused tokens or hold have not come back yet. The second try waits for this
    /// replica's pending settlements to post, or, with none pending, a short grace (another
    /// replica's may be committing).
    ///
    /// Once a second try has confirmed a key's refusal, that key's refusals skip it for
    /// `confirmedRefusalMemory` (until the key is admitted again): a client hammering an exhausted
    /// budget would otherwise cost two reservations and a 25 ms wait per refusal.
    func admit(_ request: ReservationRequest) async throws -> ReservationOutcome {
        try await admit(request, freeingRoom: { false })
    }

    /// As `admit(_:)`, and on a refusal `freeRoom` first gives back room this replica keeps for the
    /// key (its unused admission tickets), saying whether there was any. If there was, the second
    /// try is made for every refusal that room could relax (requests/min too), confirmed before or
    /// not, and it waits for those releases to post along with the settlements: one wait and two
    /// round trips at most, however the refusal is relieved. (Without `pendingSettlements` there
    /// is no second try at all; `TicketedAdmissionGate` always sets it.) A request too large for
    /// the key's limits frees nothing: no room would make it fit, and the key's other requests
    /// keep their tickets.
    func admit(_ request: ReservationRequest, freeingRoom freeRoom: () -> Bool) async throws -> ReservationOutcome {
        let outcome = try await admitOnce(request)
        if case .admitted = outcome {
            forgetConfirmedRefusal(of: request.keyID)
            return outcome
        }
        var freed = false
        if case .requestTooLarge = outcome {} else { freed = freeRoom() && outcome.mayBeRelievedByRelease }
        guard let pending = pendingSettlements,
              freed || (outcome.mayBeRelievedBySettlement && !refusalRecentlyConfirmed(for: request.keyID))
        else { return outcome }
        secondTryCount.withLock { $0 += 1 }
        if pending.hasUnposted {
            await pending.waitUntilPosted(limit: pendingSettlementWait)
        } else {
            try? await Task.sleep(for: .milliseconds(25))
        }
        let second = try await admitOnce(request)
        if second.mayBeRelievedBySettlement {
            rememberConfirmedRefusal(of: request.keyID)
        } else if case .admitted = second {
            forgetConfirmedRefusal(of: request.keyID)
        }
        return second
    }

    private let confirmedRefusals = Locked([UUID: ContinuousClock.Instant]())
    private let secondTryCount = Locked(0)
    private let tryCount = Locked(0)
    /// Second tries made so far, and reservations tried in all (for tests).
    var secondTries: Int { secondTryCount.withLock { $0 } }
    var tries: Int { tryCount.withLock { $0 } }

    private func refusalRecentlyConfirmed(for keyID: UUID) -> Bool {
        let now = ContinuousClock.now
        return confirmedRefusals.withLock { ($0[keyID] ?? now) > now }
    }

    private func rememberConfirmedRefusal(of keyID: UUID) {
        let now = ContinuousClock.now
        confirmedRefusals.withLock { refusals in
            if refusals.count >= 10_000 { refusals = refusals.filter { $0.value > now } }
            refusals[keyID] = now + confirmedRefusalMemory
        }
    }

    private func forgetConfirmedRefusal(of keyID: UUID) {
        confirmedRefusals.withLock { refusals in
            if !refusals.isEmpty { refusals[keyID] = nil }
        }
    }

    private func admitOnce(_ request: ReservationRequest) async throws -> ReservationOutcome {
        tryCount.withLock { $0 += 1 }
        let alone = state.withLock { s -> Bool in
            guard s.waiting.isEmpty, s.inFlight < maxConcurrentBatches else { return false }
            s.inFlight += 1
            return true
        }
        if alone {
            // The common case at low load: no queue, no task hop.
            defer { slotFreed() }
            return try await reserve([request])[0].get()
        }
        return try await withCheckedThrowingContinuation { continuation in
            let startBatch = state.withLock { s -> Bool in
                s.waiting.append(Waiter(request: request, continuation: continuation))
                guard s.inFlight < maxConcurrentBatches else { return false }
                s.inFlight += 1
                return true
            }
            if startBatch { Task { await self.drain() } }
        }
    }

    /// A round trip finished: hand its slot to whoever queued meanwhile, or give it back.
    private func slotFreed() {
        let more = state.withLock { s -> Bool in
            if s.waiting.isEmpty { s.inFlight -= 1; return false }
            return true
        }
        if more { Task { await self.drain() } }
    }

    /// Runs queued requests in batches until the queue is empty, then frees the slot.
    private func drain() async {
        while true {
            let batch = state.withLock { s -> [Waiter] in
                let taken = Array(s.waiting.prefix(maxBatch))
                s.waiting.removeFirst(taken.count)
                if taken.isEmpty { s.inFlight -= 1 }
                return taken
            }
            guard !batch.isEmpty else { return }
            let outcomes = await reserve(batch.map(\.request))
            for (waiter, outcome) in zip(batch, outcomes) { waiter.continuation.resume(with: outcome) }
        }
    }

    /// One round trip for `requests`; one result per request, in order.
    private func reserve(_ requests: [ReservationRequest]) async -> [Result<ReservationOutcome, any Error>] {
        do {
            let outcomes = try await withDeadline(.seconds(3)) { [database, store] in
                try await database.read { db in
                    // Both answer after their commit: nothing is forwarded before its hold is durable.
                    requests.count == 1 ? [try await store.reserve(requests[0], on: db)]
                                        : try await store.reserve(batch: requests, on: db)
                }
            }
            return outcomes.map { .success($0) }
        } catch let error as PSQLError where requests.count > 1 && error.sqlState != nil {
            // The server refused the statement (e.g. a deadlock on rows created on first use): the
            // whole transaction rolled back and nothing is reserved, so each is retried alone.
            database.logger.warning("batched reservation failed; retrying one at a time", metadata: [
                "count": "\(requests.count)", "sqlstate": "\(error.sqlState ?? "")"])
            var results: [Result<ReservationOutcome, any Error>] = []
            for request in requests { results.append(contentsOf: await reserve([request])) }
            return results
        } catch {
            database.logger.error("reservation failed", metadata: [
                "request_ids": "\(requests.map(\.requestID.apiString).joined(separator: ","))",
                "error": "\(String(reflecting: error))"])
            // Fail closed: nothing is forwarded that could not be reserved.
            let unavailable = ProxyError.unavailable("The gateway cannot reach its database to reserve budget; retry shortly.")
            return requests.map { _ in .failure(unavailable) }
        }
    }
}

extension ReservationOutcome {
    /// Refusals that a settlement still being posted could relax: it frees a concurrency slot,
    /// gives back unused tokens/min and releases the rest of a budget hold. (Requests/min are not
    /// given back.)
    var mayBeRelievedBySettlement: Bool {
        switch self {
        case .concurrencyLimited, .tokensLimited, .budgetExhausted: return true
        default: return false
        }
    }

    /// Refusals that giving unused admission tickets back could relax: a ticket holds everything a
    /// settlement frees, and its request/min too.
    var mayBeRelievedByRelease: Bool {
        if case .rateLimited = self { return true }
        return mayBeRelievedBySettlement
    }

    /// The client-facing refusal for everything but `.admitted`.
    func refusal(currency: Currency) -> ProxyError? {
        switch self {
        case .admitted:
            return nil
        case .keyInactive:
            return .forbidden("key_revoked", "This API key has been revoked.")
        case .keyExpired:
            return .forbidden("key_expired", "This API key has expired.")
        case .tenantSuspended:
            return .forbidden("tenant_suspended", "The team that owns this API key is suspended.")
        case .rateLimited(let scope, let retry, _):
            return .rateLimited("Requests-per-minute limit of the \(scope.noun) reached.", retryAfterMilliseconds: retry)
        case .tokensLimited(let scope, let retry):
            return .rateLimited("Tokens-per-minute limit of the \(scope.noun) reached.", retryAfterMilliseconds: retry,
                                code: "tokens_rate_limited")
        case .requestTooLarge(let scope):
            return .badRequest("request_exceeds_token_limit",
                               "This request could use more tokens than the \(scope.noun)'s tokens-per-minute limit allows; lower max_tokens.")
        case .concurrencyLimited(let scope):
            return .rateLimited("Too many concurrent requests for the \(scope.noun).", retryAfterMilliseconds: 1000,
                                code: "concurrency_limited")
        case .budgetExhausted(let scope, let resetsAt):
            let reset = resetsAt.map { " It resets at \(ISO8601DateFormatter().string(from: $0))." } ?? " It does not reset (lifetime budget)."
            return ProxyError(status: .init(code: 402, reasonPhrase: "Payment Required"), type: "budget_exceeded", code: "\(scope.rawValue)_budget_exceeded",
                              message: "The \(scope.noun)'s budget has no room for this request.\(reset)")
        }
    }
}

extension LimitScope {
    var noun: String { self == .key ? "API key" : "team" }
}
