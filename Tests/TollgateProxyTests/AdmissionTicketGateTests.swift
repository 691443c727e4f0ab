import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import PostgresNIO
import Testing
import TollgateDomain
import TollgateStorage
@testable import TollgateProxy

@Suite("Admission tickets")
struct AdmissionTicketGateTests {
    static let budget = Budget(limit: Money(nanos: 1_000_000_000_000), period: .monthly)

    static func request(_ key: UUID, hold: Int64, tokens: Int64 = 10) -> ReservationRequest {
        ReservationRequest(requestID: UUID(), keyID: key, hold: Money(nanos: hold), tokens: tokens, proxyID: "ticket-test",
                           ttlSeconds: 600, endpoint: "chat", model: "mistral-small-latest", metadataJSON: nil, traceparent: nil)
    }

    static func count(_ sql: String, _ h: ProxyHarness) async throws -> Int {
        try await h.database.read { db in
            try await db.query(PostgresQuery(unsafeSQL: sql), logger: db.logger).collect().first!.decode(Int.self)
        }
    }

    /// Waits (bounded) until `condition` holds.
    static func eventually(_ what: String, within limit: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while try await !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting until \(what)")
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// A key in use gets tickets; requests that fit one are admitted on it, the others exactly; each
    /// settles once by its hold's id with its own ledger row; idle tickets are given back whole.
    @Test func busyKeysAreAdmittedOnTicketsAndIdleOnesGiveThemBack() async throws {
        try await ProxyHarness.run(KeyOptions(budget: Self.budget)) { h in
            var policy = TicketedAdmissionGate.Policy()
            policy.idleRelease = .milliseconds(400)
            policy.sweepInterval = .milliseconds(50)
            let key = h.seed.keyID
            try await Self.withGate(h, policy: policy) { gate, queue in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    var admitted: [(ReservationRequest, Admission)] = []
                    for _ in 0..<2 {  // the first request marks the key as in use, the second asks for tickets
                        let r = Self.request(key, hold: 1_000)
                        admitted.append((r, try await gate.admission(for: r)))
                    }
                    #expect(admitted.allSatisfy { !$0.1.onTicket && $0.1.holdID == $0.0.requestID })
                    try await Self.eventually("tickets are granted") { gate.statistics.granted == policy.poolSize }
                    #expect(try await Self.count("SELECT count(*)::int FROM holds WHERE ticket", h) == policy.poolSize)

                    for _ in 0..<10 {
                        let r = Self.request(key, hold: 900)
                        admitted.append((r, try await gate.admission(for: r)))
                    }
                    let onTickets = admitted.suffix(10)
                    #expect(onTickets.allSatisfy { $0.1.onTicket && $0.1.holdID != $0.0.requestID })
                    #expect(Set(onTickets.map(\.1.holdID)).count == 10)
                    // Larger than every ticket: admitted exactly, and later tickets are sized for it.
                    let large = Self.request(key, hold: 5_000)
                    let exact = try await gate.admission(for: large)
                    #expect(!exact.onTicket && exact.holdID == large.requestID)
                    admitted.append((large, exact))

                    for (r, admission) in admitted {
                        let ledger = admission.onTicket
                            ? LedgerDetail(requestID: r.requestID, startedAt: Date(), endpoint: "embeddings", model: "mistral-embed",
                                           metadataJSON: nil, traceparent: nil)
                            : nil
                        queue.submit(Settlement(requestID: admission.holdID, cost: Money(nanos: 7), usage: Usage(promptTokens: 1),
                                                statusCode: 200, estimated: false, credentialID: nil, upstreamLatencyMs: nil,
                                                totalLatencyMs: nil, ledger: ledger))
                    }
                    group.addTask { try await gate.run() }
                    // Idle now: the unused tickets go back, whole.
                    try await Self.eventually("every hold is settled or released") {
                        try await Self.count("SELECT count(*)::int FROM holds", h) == 0
                    }
                    let window = try await h.budgetWindow(owner: key)
                    #expect(window.reserved == 0)
                    #expect(window.spent == Int64(7 * admitted.count))
                    let ids = admitted.map { "'\($0.0.requestID.uuidString.lowercased())'" }.joined(separator: ",")
                    #expect(try await Self.count("SELECT count(*)::int FROM usage_ledger WHERE request_id IN (\(ids))", h) == admitted.count)
                    #expect(try await Self.count("SELECT count(*)::int FROM usage_ledger", h) == admitted.count)
                    #expect(try await Self.count("SELECT count(*)::int FROM usage_ledger WHERE endpoint = 'embeddings'", h) == 10)
                    #expect(gate.statistics.released >= policy.poolSize - 10)
                    group.cancelAll()
                }
            }
        }
    }

    /// A gate with its own settlement queue, for tests that drive admission directly.
    static func withGate(_ h: ProxyHarness, policy: TicketedAdmissionGate.Policy,
                         _ body: (TicketedAdmissionGate, SettlementQueue) async throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "tollgate-tickets-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let queue = SettlementQueue(database: h.database, journal: try SettlementJournal(directory: directory, name: "t"),
                                    logger: h.database.logger)
        let store = AdmissionStore(logger: h.database.logger)
        let gate = TicketedAdmissionGate(
            exact: PostgresAdmissionGate(database: h.database, store: store, pendingSettlements: queue), database: h.database,
            store: store, settlements: queue, proxyID: "ticket-test", holdTTLSeconds: 600, policy: policy, logger: h.database.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await queue.run() }
            try await body(gate, queue)
            group.cancelAll()
        }
    }

    /// A request refused for room that this replica's own unused tickets were keeping is admitted:
    /// the tickets go back and, once that has posted, it is tried again: two round trips in all,
    /// not a second try for the settlements and a third for the tickets.
    @Test func refusalForRoomOurOwnTicketsHoldIsRetriedAfterGivingThemBack() async throws {
        try await ProxyHarness.run(KeyOptions(budget: Budget(limit: Money(nanos: 100_000), period: .monthly))) { h in
            try await Self.withGate(h, policy: TicketedAdmissionGate.Policy()) { gate, _ in
                let key = h.seed.keyID
                for _ in 0..<2 { _ = try await gate.admission(for: Self.request(key, hold: 1_000)) }
                try await Self.eventually("tickets are granted") { gate.statistics.granted > 0 }
                let ticketed = try await Self.count("SELECT coalesce(sum(amount_nanos), 0)::int FROM holds WHERE ticket", h)
                #expect(ticketed >= 4_000, "the pool holds part of the budget")
                // Fits the budget (2,000 held by the first two requests), but not beside the tickets.
                let large = Self.request(key, hold: Int64(100_000 - 2_000 - ticketed / 2))
                let triesBefore = gate.exact.tries
                let admission = try await gate.admission(for: large)
                #expect(gate.exact.tries - triesBefore == 2)
                #expect(admission.outcome == .admitted(remainingRequests: nil, remainingTokens: nil))
                #expect(!admission.onTicket && admission.holdID == large.requestID)
                #expect(try await Self.count("SELECT count(*)::int FROM holds WHERE ticket", h) == 0)
                // A request that cannot fit even so is still refused (its pool is empty now).
                let tooLarge = try await gate.admission(for: Self.request(key, hold: 100_000))
                guard case .budgetExhausted = tooLarge.outcome else {
                    Issue.record("expected a budget refusal, got \(tooLarge.outcome)")
                    return
                }
            }
        }
    }

    /// Tickets are sized to the largest recent hold: one large request makes the next grant's
    /// tickets large, and once two sizing windows pass without one, grants are small again.
    @Test func ticketSizeFollowsRecentHoldsNotTheLargestEver() async throws {
        try await ProxyHarness.run(KeyOptions(budget: Self.budget)) { h in
            var policy = TicketedAdmissionGate.Policy()
            policy.sizingWindow = .seconds(2)
            policy.idleRelease = .seconds(60)
            policy.maxAge = .seconds(60)   // no sweeper runs here: old tickets must stay usable
            try await Self.withGate(h, policy: policy) { gate, _ in
                let key = h.seed.keyID
                func sized(_ amount: Int) async throws -> Int {
                    try await Self.count("SELECT count(*)::int FROM holds WHERE ticket AND amount_nanos = \(amount)", h)
                }
                /// Small requests until the next grant lands; returns the tickets granted so far.
                /// (No grant is in flight between calls: one starts only from an admission, and the
                /// loop stops as soon as the one it started has landed.)
                func consumeUntilNextGrant() async throws -> Int {
                    let before = gate.statistics.granted
                    var sent = 0
                    while gate.statistics.granted == before {
                        _ = try await gate.admission(for: Self.request(key, hold: 1_000))
                        sent += 1
                        if sent > 300 { Issue.record("no grant after \(sent) requests"); break }
                        try await Task.sleep(for: .milliseconds(2))
                    }
                    return gate.statistics.granted
                }
                let first = try await consumeUntilNextGrant()
                #expect(first > 0)
                #expect(try await sized(1_000) == first)
                let large = try await gate.admission(for: Self.request(key, hold: 5_000))
                #expect(!large.onTicket)
                let second = try await consumeUntilNextGrant()
                #expect(try await sized(5_000) == second - first, "the grant after a large hold is sized for it")
                #expect(try await sized(1_000) == first)
                try await Task.sleep(for: policy.sizingWindow * 2 + .milliseconds(200))
                let third = try await consumeUntilNextGrant()
                #expect(try await sized(5_000) == second - first, "no further large tickets")
                #expect(try await sized(1_000) == first + third - second, "small again once the large hold is two windows old")
            }
        }
    }

    /// Through the proxy: back-to-back requests of one key are admitted on tickets, and each still
    /// has exactly one ledger row, under the id its client saw, with its own metadata; nothing stays
    /// reserved once the key is idle. A change to the key gives its tickets back at once.
    @Test func requestsOnTicketsKeepTheirIdsAndMetadata() async throws {
        try await ProxyHarness.run(KeyOptions(budget: Self.budget)) { h in
            var requestIDs: [String] = []
            var sawTickets = false
            for index in 0..<40 {
                var headers = HTTPFields()
                headers[HTTPField.Name("x-tollgate-metadata")!] = #"{"n":\#(index)}"#
                let reply = try await h.post("/v1/chat/completions", chatBody, headers: headers)
                #expect(reply.status == .ok)
                requestIDs.append(reply.headers[HTTPField.Name("x-request-id")!] ?? "")
                if !sawTickets { sawTickets = try await Self.count("SELECT count(*)::int FROM holds WHERE ticket", h) > 0 }
            }
            #expect(sawTickets, "a key in steady use is given tickets")
            let rows = try await h.settled(expectedRows: 40)
            #expect(Set(rows.map { $0.requestID.uuidString.lowercased() }) == Set(requestIDs))
            let window = try await h.budgetWindow(owner: h.seed.keyID)
            #expect(window.reserved == 0)
            #expect(window.spent == rows.reduce(0) { $0 + $1.costNanos })
            let metadataMatches = try await h.database.read { db in
                try await db.query("SELECT count(*)::int FROM usage_ledger WHERE metadata ? 'n'", logger: db.logger)
                    .collect().first!.decode(Int.self)
            }
            #expect(metadataMatches == 40)
            let distinctMetadata = try await Self.count("SELECT count(DISTINCT metadata->>'n')::int FROM usage_ledger", h)
            #expect(distinctMetadata == 40)
            // Requests were really admitted on tickets.
            let onTickets = try await h.ledgerRowsAdmittedOnTickets()
            // Most, not a fixed share: how many depends on the machine's load (23 of 40 seen in a
            // similar test on a loaded machine).
            #expect(onTickets >= 20, "\(onTickets) of 40 requests on tickets")

        }
    }

    /// Requests admitted on tickets carry the key's remaining allowance too (the last grant's room
    /// plus the unused tickets), consistent with what exact admission reports: never less than
    /// the limit minus the requests admitted so far, and no more than what the rate has given back
    /// since, plus the exact admissions a grant's figure has not seen yet. (An exact admission
    /// while a grant is on its way may report less: the database has charged tickets the pool does
    /// not hold yet. Harmless, it only understates; those responses are held to the upper bound.)
    @Test func rateLimitHeadersOnTicketsReportTheKeysAllowance() async throws {
        let limit = 6_000
        try await ProxyHarness.run(KeyOptions(budget: Self.budget, limits: RateLimits(requestsPerMinute: limit, tokensPerMinute: 50_000_000))) { h in
            let started = ContinuousClock.now
            var reported: [(n: Int, id: String, requests: Int, tokens: Int, elapsed: Duration)] = []
            for n in 1...40 {
                let reply = try await h.post("/v1/chat/completions", chatBody)
                #expect(reply.status == .ok)
                let requests = reply.headers[HTTPField.Name("x-ratelimit-remaining-requests")!].flatMap { Int($0) }
                let tokens = reply.headers[HTTPField.Name("x-ratelimit-remaining-tokens")!].flatMap { Int($0) }
                #expect(reply.headers[HTTPField.Name("x-ratelimit-limit-requests")!] == "\(limit)")
                guard let requests, let tokens else {
                    Issue.record("response \(n) has no remaining allowance")
                    continue
                }
                reported.append((n, reply.headers[HTTPField.Name("x-request-id")!] ?? "", requests, tokens, ContinuousClock.now - started))
            }
            _ = try await h.settled(expectedRows: 40)
            let onTickets = try await h.requestIDsAdmittedOnTickets()
            // Enough on tickets for the check to be about them (how many depends on the machine's load).
            #expect(onTickets.count >= 10, "\(onTickets.count) of 40 requests on tickets")
            let exact = 40 - onTickets.count
            for r in reported {
                let givenBack = Int((r.elapsed.timeInterval * Double(limit) / 60).rounded(.up))
                if onTickets.contains(r.id) {
                    #expect(r.requests >= limit - r.n, "response \(r.n), on a ticket, reported \(r.requests) requests left")
                }
                #expect(r.requests <= limit - r.n + givenBack + exact + 1, "response \(r.n) reported \(r.requests) requests left")
                #expect(r.tokens > 0, "response \(r.n) reported \(r.tokens) tokens left")
            }
        }
    }

    /// A change to the key (any admin change) gives its pooled tickets back at once: they were
    /// granted under the old rules. (Idle release is set far away to tell the two apart.)
    @Test func aKeyChangeGivesItsTicketsBack() async throws {
        try await ProxyHarness.run(KeyOptions(budget: Self.budget), configure: { $0.admissionTicketIdleRelease = .seconds(60) }) { h in
            for _ in 0..<4 { #expect(try await h.post("/v1/chat/completions", chatBody).status == .ok) }
            try await Self.eventually("tickets are pooled") { try await Self.count("SELECT count(*)::int FROM holds WHERE ticket", h) > 0 }
            try await h.database.read { db in
                _ = try await db.query("UPDATE virtual_keys SET name = 'renamed' WHERE id = \(h.seed.keyID)", logger: db.logger)
            }
            // Within 3 s: tickets are given back at 5 s old anyway (Policy.maxAge).
            try await Self.eventually("the tickets are given back", within: .seconds(3)) {
                try await Self.count("SELECT count(*)::int FROM holds", h) == 0
            }
            #expect(try await h.budgetWindow(owner: h.seed.keyID).reserved == 0)
        }
    }
}
