import Foundation
import Logging
import ServiceLifecycle
import TollgateDomain
import TollgateStorage

/// Stage 3 without a database round trip on the request's path, for keys in steady use.
///
/// Why: waiting for a durable hold was most of the gateway's added latency (about 0.7 ms of 1.4 ms
/// at one connection, measured). A ticket is that same hold, taken in advance: granted by the
/// database under the same rules (requests/min, tokens/min, a concurrency slot, the budget amount,
/// migrations/0006) and durable before this replica hears of it. A request whose hold and tokens
/// fit an unused ticket of its key takes it and goes on at once; nothing is ever forwarded
/// uncovered. It settles by the ticket's id, exactly once, with its own ledger details.
///
/// Tickets are only taken for keys in use (the second request within `idleRelease`), topped up in
/// the background when a key's pool runs low, and given back whole (requests/min included) once the
/// key has been idle for `idleRelease` or a ticket is older than `maxAge`. Near a limit the database
/// grants none (each grant takes at most 1/`headroom` of what is left), and then every request is
/// admitted exactly, one round trip each, as before: the refusals users see come from there.
///
/// Trade-offs: unused tickets show as reserved budget (and in-flight requests) for up to
/// `idleRelease`; an admin change reaches pooled tickets when the change notification arrives (the
/// pools are dropped and released); tickets of a replica that dies are charged by the reaper at
/// their amount, marked estimated, like any hold whose outcome is unknown.
final class TicketedAdmissionGate: AdmissionGate, Service {
    struct Policy: Sendable {
        /// Tickets a key's pool is topped up to: enough for `poolCover` of the key's demand, within
        /// these bounds. A pool is topped up when it is down to half.
        var poolSize = 16
        var maxPoolSize = 256
        /// (25 ms left 12 % of requests at 32 connections to exact admission, waiting behind a grant
        /// that waited for a settlement's commit; 100 ms, 3.5 %.)
        var poolCover: Duration = .milliseconds(100)
        /// A grant takes at most 1/headroom of each limit's and budget's remaining room...
        var headroom = 8
        /// ...and nothing if that is fewer than this many tickets: keys with small limits, or near
        /// one, are admitted exactly, where other replicas' idle tickets cannot cost them a request.
        var minimumGrant = 4
        /// A key unused this long gives its tickets back.
        var idleRelease: Duration = .seconds(1)
        /// No ticket older than this is used: it is given back (limits changed meanwhile stay honest).
        var maxAge: Duration = .seconds(5)
        /// After a grant of nothing (or a failed one), the key is not asked for again this long.
        var quietAfterRefusal: Duration = .seconds(2)
        /// How often idle pools and old tickets are looked for.
        var sweepInterval: Duration = .milliseconds(250)
        /// Tickets are sized to the largest hold seen in the current and the previous window of
        /// this length: one large request makes them larger for a while, not for good.
        var sizingWindow: Duration = .seconds(5)
    }

    private struct Ticket: HoldsTokens {
        let id: UUID
        let amount: Int64
        let tokens: Int64
        /// When the grant was asked for: its ages and ends are counted from before the database
        /// granted it, so they err on the early side (the hold's expiry is counted from later).
        let granted: ContinuousClock.Instant
        let usableUntil: ContinuousClock.Instant?
    }

    /// What one grant asks for: `count` tickets of this size, for this endpoint and model.
    private struct GrantRequest {
        let amount: Int64
        let tokens: Int64
        let endpoint: String
        let model: String?
        let count: Int
    }

    private struct Pool {
        var tickets = TicketStock<Ticket>()
        var lastDemand: ContinuousClock.Instant
        /// What new tickets are sized to: the largest hold and token count of this sizing window
        /// and the one before.
        var amount: Int64 { max(sizing.amount, previousSizing.amount) }
        var tokens: Int64 { max(sizing.tokens, previousSizing.tokens) }
        private var sizing: (amount: Int64, tokens: Int64)
        private var previousSizing: (amount: Int64, tokens: Int64) = (0, 0)
        private var sizingSince: ContinuousClock.Instant
        var endpoint: String
        var model: String?
        /// The key's requests/min and tokens/min left after the latest grant: a request on a
        /// ticket reports these plus the pool's unused tickets, as its remaining allowance.
        var roomAfterGrant: (requests: Int64?, tokens: Int64?) = (nil, nil)
        var refilling = false
        var quietUntil: ContinuousClock.Instant?
        /// Demand, measured over windows of at least 100 ms.
        var demandSince: ContinuousClock.Instant
        var demandCount = 0
        var perSecond = 0.0

        init(now: ContinuousClock.Instant, request: ReservationRequest) {
            lastDemand = now; demandSince = now; sizingSince = now
            sizing = (request.hold.nanos, request.tokens); endpoint = request.endpoint; model = request.model
        }

        mutating func recordSize(of request: ReservationRequest, at now: ContinuousClock.Instant, window: Duration) {
            if now - sizingSince >= window {
                // Two windows on, the earlier one has nothing left to say.
                previousSizing = now - sizingSince >= window * 2 ? (0, 0) : sizing
                sizing = (0, 0)
                sizingSince = now
            }
            sizing = (max(sizing.amount, request.hold.nanos), max(sizing.tokens, request.tokens))
        }

        mutating func recordDemand(at now: ContinuousClock.Instant) {
            lastDemand = now
            demandCount += 1
            let elapsed = now - demandSince
            guard elapsed >= .milliseconds(100) else { return }
            perSecond = Double(demandCount) / elapsed.timeInterval
            demandSince = now
            demandCount = 0
        }

        /// The key's remaining allowance, as exact admission reports it (approximately: as of the
        /// latest grant, which time has only added to, plus this replica's unused tickets, which are
        /// the key's to use; other replicas may use the rest meanwhile). Read once the request's
        /// own ticket has left the pool. May exceed the limit (the rate gives back what unused
        /// tickets took): the response caps it.
        var remainingAllowance: ReservationOutcome {
            .admitted(remainingRequests: roomAfterGrant.requests.map { $0 + Int64(tickets.count) },
                      remainingTokens: roomAfterGrant.tokens.map { $0 + tickets.tokens })
        }

        /// Records the request's demand and takes the oldest unused ticket that covers it, if any.
        mutating func claim(for request: ReservationRequest, at now: ContinuousClock.Instant,
                            policy: Policy) -> (Ticket, remaining: ReservationOutcome)? {
            recordDemand(at: now)
            recordSize(of: request, at: now, window: policy.sizingWindow)
            guard let ticket = tickets.takeFirst(where: {
                $0.amount >= request.hold.nanos && $0.tokens >= request.tokens && now - $0.granted < policy.maxAge
                    && ($0.usableUntil.map { now < $0 } ?? true)
            }) else { return nil }
            return (ticket, remainingAllowance)
        }

        /// Whether to ask for more tickets now: down to half the target, none asked for already,
        /// and not told no a moment ago.
        mutating func startRefillIfLow(at now: ContinuousClock.Instant, policy: Policy) -> Bool {
            guard !refilling, tickets.count <= target(policy) / 2, quietUntil.map({ now >= $0 }) ?? true else { return false }
            refilling = true
            return true
        }

        /// A grant's answer: its tickets join the pool (sized as `sized` asked for), or, granted
        /// none, the key is not asked for again for a while.
        mutating func landGrant(_ grant: TicketGrant, asked: ContinuousClock.Instant, sized: GrantRequest,
                                answered: ContinuousClock.Instant, policy: Policy) {
            refilling = false
            if grant.ticketIDs.isEmpty {
                quietUntil = answered + policy.quietAfterRefusal
                return
            }
            quietUntil = nil
            roomAfterGrant = (grant.remainingRequests, grant.remainingTokens)
            tickets.append(contentsOf: grant.ticketIDs.map {
                Ticket(id: $0, amount: sized.amount, tokens: sized.tokens, granted: asked,
                       usableUntil: grant.usableFor.map { asked + $0 })
            })
        }

        func target(_ policy: Policy) -> Int {
            min(policy.maxPoolSize, max(policy.poolSize, Int(perSecond * policy.poolCover.timeInterval)))
        }
    }

    private struct State {
        var pools: [UUID: Pool] = [:]
        /// Bumped when pools are dropped: a grant that began before must not fill the new ones.
        var epoch = 0
        var closed = false
        /// Grants on their way: shutdown waits for them, so their tickets are given back too.
        var refillsInFlight = 0
    }

    let exact: PostgresAdmissionGate
    let database: Database
    let store: AdmissionStore
    let settlements: SettlementQueue
    let proxyID: String
    /// Ticket holds live this long in the database: a request may take one up to `maxAge` after
    /// its grant and then runs as long as any request may.
    let ticketTTLSeconds: Int
    let policy: Policy
    let logger: Logger
    private let state = Locked(State())
    private let counters = Locked((claimed: 0, exact: 0, granted: 0, released: 0))

    /// `exact` must wait for `settlements` before its second tries: that is where given-back
    /// tickets are posted.
    init(exact: PostgresAdmissionGate, database: Database, store: AdmissionStore, settlements: SettlementQueue,
         proxyID: String, holdTTLSeconds: Int, policy: Policy = Policy(), logger: Logger) {
        precondition(exact.pendingSettlements === settlements, "the exact gate must wait for the queue tickets are released through")
        self.exact = exact
        self.database = database
        self.store = store
        self.settlements = settlements
        self.proxyID = proxyID
        self.policy = policy
        self.ticketTTLSeconds = holdTTLSeconds + Int(policy.maxAge.components.seconds) + 1
        self.logger = logger
    }

    /// Counts for tests and the benchmark: requests admitted on a ticket, exactly, tickets granted
    /// and tickets given back.
    var statistics: (claimed: Int, exact: Int, granted: Int, released: Int) { counters.withLock { $0 } }

    /// Exact admission only: an outcome alone cannot say which hold to settle, so tickets are
    /// only handed out through `admission(for:)`.
    func admit(_ request: ReservationRequest) async throws -> ReservationOutcome {
        try await exact.admit(request)
    }

    func admission(for request: ReservationRequest) async throws -> Admission {
        let now = ContinuousClock.now
        let (ticket, refillEpoch) = state.withLock { s -> ((Ticket, remaining: ReservationOutcome)?, Int?) in
            guard !s.closed else { return (nil, nil) }
            guard s.pools[request.keyID] != nil else {
                // A key's first request: no tickets until it is seen in use.
                s.pools[request.keyID] = Pool(now: now, request: request)
                return (nil, nil)
            }
            // In place (through the dictionary's accessor): a copy of the pool would copy its tickets.
            let ticket = s.pools[request.keyID]!.claim(for: request, at: now, policy: policy)
            var refill: Int?
            if s.pools[request.keyID]!.startRefillIfLow(at: now, policy: policy) {
                s.refillsInFlight += 1
                refill = s.epoch
            }
            return (ticket, refill)
        }
        if let refillEpoch { Task { await self.refill(keyID: request.keyID, epoch: refillEpoch) } }
        if let (ticket, remaining) = ticket {
            counters.withLock { $0.claimed += 1 }
            ProxyMetrics.admittedOnTicket.increment()
            return Admission(outcome: remaining, holdID: ticket.id, onTicket: true)
        }
        counters.withLock { $0.exact += 1 }
        ProxyMetrics.admittedExactly.increment()
        // This replica's own unused tickets may be what leaves no room (they hold budget, slots,
        // tokens/min and requests/min): on a refusal they go back before the exact gate's second
        // try, so that the request is not refused for room this replica was only keeping.
        var outcome = try await exact.admit(request, freeingRoom: { giveBack(keyID: request.keyID) > 0 })
        if case .admitted(let requests, let tokens) = outcome, requests != nil || tokens != nil {
            // The database counts this replica's unused tickets as taken; they are the key's to use.
            let unused = state.withLock { s in
                s.pools[request.keyID].map { ($0.tickets.count, $0.tickets.tokens) } ?? (0, 0)
            }
            outcome = .admitted(remainingRequests: requests.map { $0 + Int64(unused.0) }, remainingTokens: tokens.map { $0 + unused.1 })
        }
        return Admission(outcome: outcome, holdID: request.requestID, onTicket: false)
    }

    /// The key was refused: its pooled tickets (too small for this request, or about to be) go
    /// back, and it is not granted more for a while. Returns how many went back.
    @discardableResult
    private func giveBack(keyID: UUID) -> Int {
        let now = ContinuousClock.now
        let tickets = state.withLock { s -> [UUID] in
            guard s.pools[keyID] != nil else { return [] }
            s.pools[keyID]!.quietUntil = now + policy.quietAfterRefusal
            return s.pools[keyID]!.tickets.removeAll().map(\.id)
        }
        release(tickets)
        return tickets.count
    }

    /// Tops `keyID`'s pool up in one round trip; gives the tickets back at once if the pools were
    /// dropped meanwhile.
    private func refill(keyID: UUID, epoch: Int) async {
        // What to ask for, read once: holding a copy of the pool would make the grant's append
        // copy all its tickets.
        guard let pool = state.withLock({ s -> GrantRequest? in
            guard let pool = s.pools[keyID], s.epoch == epoch, !s.closed else {
                s.refillsInFlight -= 1
                return nil
            }
            return GrantRequest(amount: pool.amount, tokens: pool.tokens, endpoint: pool.endpoint, model: pool.model,
                                count: max(0, pool.target(policy) - pool.tickets.count))
        }) else { return }
        let asked = (0..<pool.count).map { _ in UUID.random() }
        let asking = ContinuousClock.now
        var grant = TicketGrant(ticketIDs: [], usableFor: nil)
        do {
            grant = try await withDeadline(.seconds(3)) { [database, store, proxyID, ticketTTLSeconds, policy] in
                try await database.read { db in
                    try await store.takeTickets(asked, keyID: keyID, hold: Money(nanos: pool.amount), tokens: pool.tokens,
                                                proxyID: proxyID, ttlSeconds: ticketTTLSeconds, endpoint: pool.endpoint,
                                                model: pool.model, headroom: policy.headroom,
                                                minimum: policy.minimumGrant, on: db)
                }
            }
        } catch {
            // The grant may have committed unseen (the connection dropped, the deadline passed with
            // the statement still running): give back whatever it took, now and once more later in
            // case it commits after the first release is posted. Releasing what was never granted
            // does nothing.
            logger.warning("admission tickets could not be taken", metadata: ["key_id": "\(keyID)", "error": "\(String(reflecting: error))"])
            release(asked, counted: false)
            Task { [weak self] in
                try? await Task.sleep(for: .seconds(10))
                self?.release(asked, counted: false)
            }
        }
        let answered = ContinuousClock.now
        let unwanted = state.withLock { s -> [UUID] in
            s.refillsInFlight -= 1
            guard s.epoch == epoch, !s.closed, s.pools[keyID] != nil else { return grant.ticketIDs }
            s.pools[keyID]!.landGrant(grant, asked: asking, sized: pool, answered: answered, policy: policy)
            return []
        }
        counters.withLock { $0.granted += grant.ticketIDs.count }
        release(unwanted)
    }

    /// Drops every pool and gives its tickets back: a key, team or price changed, so tickets granted
    /// under the old rules must not be used.
    func dropAll() {
        let tickets = state.withLock { s -> [UUID] in
            s.epoch += 1
            defer { s.pools.removeAll() }
            return s.pools.values.flatMap { $0.tickets.all.map(\.id) }
        }
        release(tickets)
    }

    /// Gives back idle keys' tickets and tickets too old to use.
    func sweep(now: ContinuousClock.Instant = .now) {
        let stale = state.withLock { s -> [UUID] in
            var stale: [UUID] = []
            for (keyID, pool) in s.pools {
                if now - pool.lastDemand >= policy.idleRelease, !pool.refilling {
                    stale += pool.tickets.all.map(\.id)
                    s.pools[keyID] = nil
                    continue
                }
                stale += s.pools[keyID]!.tickets.removeAll {
                    now - $0.granted >= policy.maxAge || ($0.usableUntil.map { now >= $0 } ?? false)
                }.map(\.id)
            }
            return stale
        }
        release(stale)
    }

    private func release(_ tickets: [UUID], counted: Bool = true) {
        guard !tickets.isEmpty else { return }
        if counted { counters.withLock { $0.released += tickets.count } }
        for ticket in tickets { settlements.submit(.release(ticket: ticket)) }
    }

    /// Sweeps until shutdown, then gives every ticket back. Runs before the settlement queue shuts
    /// down (listed after it), so the releases are posted with its final flush.
    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.policy.sweepInterval) }
            sweep()
        }
        let tickets = state.withLock { s -> [UUID] in
            s.closed = true
            s.epoch += 1
            defer { s.pools.removeAll() }
            return s.pools.values.flatMap { $0.tickets.all.map(\.id) }
        }
        release(tickets)
        // A grant still on its way gives its tickets back when it lands (closed): wait for it, so
        // those releases reach the settlement queue before its final flush. Bounded by the grant's
        // own deadline.
        let deadline = ContinuousClock.now + .seconds(4)
        while state.withLock({ $0.refillsInFlight > 0 }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}

extension Array {
    /// The elements matching `isIncluded`, and the others, each in order.
    func partitioned(_ isIncluded: (Element) -> Bool) -> (matching: [Element], rest: [Element]) {
        var matching: [Element] = []
        var rest: [Element] = []
        for element in self {
            if isIncluded(element) { matching.append(element) } else { rest.append(element) }
        }
        return (matching, rest)
    }
}
