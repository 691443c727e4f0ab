import Foundation
import PostgresNIO
import Testing
import TollgateDomain
import TollgateTestSupport
@testable import TollgateStorage

/// tollgate_take_tickets and the ticket rows of tollgate_post_settlements (migrations/0006):
/// holds granted in advance by the admission rules, given back whole, or settled with the
/// request's own ledger details.
@Suite struct AdmissionTicketTests {
    static let admission = BatchedAdmissionTests.admission
    static let settlement = BatchedAdmissionTests.settlement

    static func take(_ key: UUID, count: Int, hold: Int64 = 100, tokens: Int64 = 10, headroom: Int = 8, minimum: Int = 1,
                     ttl: Int = 600, db: Database) async throws -> TicketGrant {
        try await db.read {
            try await admission.takeTickets((0..<count).map { _ in UUID() }, keyID: key, hold: Money(nanos: hold), tokens: tokens, proxyID: "test",
                                            ttlSeconds: ttl, endpoint: "chat", model: "m", headroom: headroom, minimum: minimum, on: $0)
        }
    }

    static func scalar<T: PostgresDecodable & Sendable>(_ query: PostgresQuery, _ type: T.Type, db: Database) async throws -> T {
        try await db.read { try await $0.query(query, logger: $0.logger).collect().first!.decode(T.self) }
    }

    /// Requests the key's limit rows would admit right now: both GCRA clocks are no later than now.
    static func clocksAtRest(_ owner: UUID, db: Database) async throws -> Bool {
        try await scalar("SELECT request_tat <= now() AND token_tat <= now() FROM limit_state WHERE owner_id = \(owner)",
                         Bool.self, db: db)
    }

    @Test func releasedTicketsGiveEverythingBack() async throws {
        try await RepositoryTests.withMigratedDatabase { db in
            let acme = RepositoryTests.tenant("acme", limits: RateLimits(requestsPerMinute: 10_000, tokensPerMinute: 1_000_000))
            _ = try await db.transaction { try await RepositoryTests.tenants.insert(acme, on: $0) }
            // Small limits and no headroom, so that the clocks are still far ahead when checked.
            let key = try await BatchedAdmissionTests.key(
                acme, budget: Budget(limit: Money(nanos: 1_000_000), period: .daily),
                limits: RateLimits(requestsPerMinute: 8, tokensPerMinute: 400, maxConcurrent: 100), on: db)

            let grant = try await Self.take(key, count: 4, headroom: 1, db: db)
            #expect(grant.ticketIDs.count == 4)
            #expect(try await BatchedAdmissionTests.rows([acme.id, key], db: db) == ["4/-1/-1", "4/400/0"])
            #expect(try await Self.scalar("SELECT count(*)::int FROM holds WHERE ticket", Int.self, db: db) == 4)
            #expect(!(try await Self.clocksAtRest(key, db: db)))

            let results = try await db.read { try await Self.settlement.settle(batch: grant.ticketIDs.map { .release(ticket: $0) }, on: $0) }
            #expect(results.allSatisfy { $0.settled })
            #expect(try await BatchedAdmissionTests.rows([acme.id, key], db: db) == ["0/-1/-1", "0/0/0"])
            #expect(try await Self.clocksAtRest(key, db: db))
            #expect(try await Self.clocksAtRest(acme.id, db: db))
            #expect(try await Self.scalar("SELECT count(*)::int FROM usage_ledger", Int.self, db: db) == 0)
            #expect(try await Self.scalar("SELECT count(*)::int FROM holds", Int.self, db: db) == 0)

            // A release names tickets only: a request's own hold is not given back by one.
            let request = BatchedAdmissionTests.request(key, hold: 100)
            _ = try await db.read { try await Self.admission.reserve(request, on: $0) }
            let single = try await db.read { try await Self.settlement.settle(.release(ticket: request.requestID), on: $0) }
            #expect(!single.settled)
            #expect(try await BatchedAdmissionTests.reserved(owner: key, db: db) == 100)
        }
    }

    @Test func aTicketSettlesOnceWithTheRequestsOwnLedgerDetails() async throws {
        try await RepositoryTests.withMigratedDatabase { db in
            let acme = RepositoryTests.tenant("acme")
            _ = try await db.transaction { try await RepositoryTests.tenants.insert(acme, on: $0) }
            let key = try await BatchedAdmissionTests.key(acme, budget: Budget(limit: Money(nanos: 1_000_000), period: .monthly), on: db)
            let grant = try await Self.take(key, count: 2, db: db)
            #expect(grant.ticketIDs.count == 2)

            let requestID = UUID()
            let started = Date(timeIntervalSinceNow: -3)
            var settlement = Settlement(
                requestID: grant.ticketIDs[0], cost: Money(nanos: 70), usage: Usage(promptTokens: 5, completionTokens: 2),
                statusCode: 200, estimated: false, credentialID: nil, upstreamLatencyMs: 3, totalLatencyMs: 4,
                ledger: LedgerDetail(requestID: requestID, startedAt: started, endpoint: "embeddings", model: "mistral-embed",
                                     metadataJSON: #"{"team":"x \"y\""}"#, traceparent: "00-abc-def-01"))
            for _ in 0..<2 {  // the replay changes nothing
                _ = try await db.read { try await Self.settlement.settle(settlement, on: $0) }
            }
            let row = try await db.read { db in
                try await db.query("""
                    SELECT request_id, endpoint, model, metadata->>'team', traceparent, cost_nanos, prompt_tokens,
                           abs(extract(epoch FROM started_at) - \(started.timeIntervalSince1970)) < 0.01
                    FROM usage_ledger
                    """, logger: db.logger).collect()
            }
            #expect(row.count == 1)
            let (id, endpoint, model, team, traceparent, cost, prompt, startedMatches) =
                try row[0].decode((UUID, String, String?, String?, String?, Int64, Int, Bool).self)
            #expect(id == requestID && endpoint == "embeddings" && model == "mistral-embed" && team == #"x "y""#)
            #expect(traceparent == "00-abc-def-01" && cost == 70 && prompt == 5 && startedMatches)
            #expect(try await BatchedAdmissionTests.rows([key], db: db) == ["-1/100/70"])

            // Ledger details never turn a release into a charge, nor a settled ticket into a release.
            settlement.requestID = grant.ticketIDs[1]
            settlement.released = true
            _ = try await db.read { try await Self.settlement.settle(settlement, on: $0) }
            #expect(try await BatchedAdmissionTests.rows([key], db: db) == ["-1/0/70"])
            #expect(try await Self.scalar("SELECT count(*)::int FROM usage_ledger", Int.self, db: db) == 1)
        }
    }

    /// A grant takes at most 1/headroom of what is left of each limit and budget of key and team,
    /// and nothing below the minimum; inactive keys get nothing. (Concurrency and budgets do not
    /// refill with time, so their arithmetic is checked exactly on a loaded machine too; rates only
    /// from a full minute's room.)
    @Test func grantsLeaveMostOfEveryLimitToOthers() async throws {
        try await RepositoryTests.withMigratedDatabase { db in
            let acme = RepositoryTests.tenant("acme", limits: RateLimits(maxConcurrent: 160))
            _ = try await db.transaction { try await RepositoryTests.tenants.insert(acme, on: $0) }
            let capped = try await BatchedAdmissionTests.key(acme, limits: RateLimits(maxConcurrent: 80), on: db)
            #expect(try await Self.take(capped, count: 16, db: db).ticketIDs.count == 10)  // 80 / 8
            #expect(try await Self.take(capped, count: 16, db: db).ticketIDs.count == 8)   // 70 / 8
            #expect(try await Self.take(capped, count: 16, minimum: 8, db: db).ticketIDs.isEmpty)  // 62 / 8 = 7 < 8
            let other = try await BatchedAdmissionTests.key(acme, on: db)
            // The team has 160 - 18 = 142 slots left: 17 at most, 16 asked.
            #expect(try await Self.take(other, count: 16, db: db).ticketIDs.count == 16)
            #expect(try await Self.take(other, count: 16, db: db).ticketIDs.count == 15)  // 126 / 8

            let beta = RepositoryTests.tenant("beta")
            _ = try await db.transaction { try await RepositoryTests.tenants.insert(beta, on: $0) }
            let rpm = try await BatchedAdmissionTests.key(beta, limits: RateLimits(requestsPerMinute: 80), on: db)
            let rpmGrant = try await Self.take(rpm, count: 16, db: db)
            #expect(rpmGrant.ticketIDs.count == 10)  // 80 / 8
            // The room left is reported as an exact admission reports it (read just after the grant commits).
            #expect(rpmGrant.remainingRequests == 70 && rpmGrant.remainingTokens == nil)
            let tpm = try await BatchedAdmissionTests.key(beta, limits: RateLimits(tokensPerMinute: 8_000), on: db)
            let tpmGrant = try await Self.take(tpm, count: 16, tokens: 100, db: db)
            #expect(tpmGrant.ticketIDs.count == 10)  // 80 tickets' tokens / 8
            // (8,000/min refills a token every 7.5 ms: a slow machine may see a few.)
            #expect((7_000...7_010).contains(tpmGrant.remainingTokens ?? -1) && tpmGrant.remainingRequests == nil)

            let budget = try await BatchedAdmissionTests.key(beta, budget: Budget(limit: Money(nanos: 8_000), period: .daily), on: db)
            let grant = try await Self.take(budget, count: 16, hold: 100, db: db)
            #expect(grant.ticketIDs.count == 10)  // 8000 / (8 * 100)
            #expect(try await Self.take(budget, count: 16, hold: 1_000, db: db).ticketIDs.isEmpty)  // 7000 / 8000
            // A daily budget's tickets are not to be used after its window.
            let end = try #require(BudgetPeriod.daily.window(containing: Date()).end)
            let usableFor = try #require(grant.usableFor)
            #expect(abs(Date().addingTimeInterval(Double(usableFor.components.seconds)).timeIntervalSince(end)) < 2)

            // Over budget after an overshoot: no tickets, not even free ones (the exact path refuses them too).
            let overspent = try await BatchedAdmissionTests.key(beta, budget: Budget(limit: Money(nanos: 100), period: .daily), on: db)
            let r = BatchedAdmissionTests.request(overspent, hold: 100)
            _ = try await db.read { try await Self.admission.reserve(r, on: $0) }
            _ = try await db.read { try await Self.settlement.settle(BatchedAdmissionTests.settle(r, cost: 150), on: $0) }
            #expect(try await Self.take(overspent, count: 16, hold: 0, db: db).ticketIDs.isEmpty)
            let free = try await db.read { try await Self.admission.reserve(BatchedAdmissionTests.request(overspent, hold: 0), on: $0) }
            #expect(free.kind == "budget:key")

            let revoked = try await BatchedAdmissionTests.key(beta, on: db)
            _ = try await db.transaction { try await BatchedAdmissionTests.keys.revoke(tenantID: beta.id, id: revoked, on: $0) }
            #expect(try await Self.take(revoked, count: 16, db: db).ticketIDs.isEmpty)
            #expect(try await Self.take(UUID(), count: 16, db: db).ticketIDs.isEmpty)
            let plain = try await BatchedAdmissionTests.key(beta, on: db)
            let unlimited = try await Self.take(plain, count: 16, db: db)
            #expect(unlimited.ticketIDs.count == 16 && unlimited.usableFor == nil)
        }
    }

    /// Tickets are real holds: granted without headroom they use a limit or budget up exactly as
    /// many requests would, and the next request is refused by it.
    @Test func ticketsUseLimitsUpLikeRequests() async throws {
        try await RepositoryTests.withMigratedDatabase { db in
            let acme = RepositoryTests.tenant("acme")
            _ = try await db.transaction { try await RepositoryTests.tenants.insert(acme, on: $0) }
            let cases: [(RateLimits, Budget?, Int64, String)] = [
                (RateLimits(requestsPerMinute: 6), nil, 1, "rate:key"),
                (RateLimits(tokensPerMinute: 60), nil, 1, "tokens:key"),
                (RateLimits(maxConcurrent: 6), nil, 1, "concurrency:key"),
                (RateLimits(), Budget(limit: Money(nanos: 600), period: .monthly), 1, "budget:key"),
            ]
            for (limits, budget, extraHold, refusal) in cases {
                let key = try await BatchedAdmissionTests.key(acme, budget: budget, limits: limits, on: db)
                let grant = try await Self.take(key, count: 16, hold: 100, tokens: 10, headroom: 1, db: db)
                #expect(grant.ticketIDs.count == 6, "\(refusal)")
                let next = try await db.read { try await Self.admission.reserve(BatchedAdmissionTests.request(key, hold: extraHold), on: $0) }
                #expect(next.kind == refusal)
            }
        }
    }

    /// A replica of the previous release still posts through the 11-array procedure (0005) while a
    /// rolling upgrade has already applied 0006.
    @Test func thePreviousSettlementProcedureStillWorks() async throws {
        try await RepositoryTests.withMigratedDatabase { db in
            let acme = RepositoryTests.tenant("acme")
            _ = try await db.transaction { try await RepositoryTests.tenants.insert(acme, on: $0) }
            let key = try await BatchedAdmissionTests.key(acme, budget: Budget(limit: Money(nanos: 1_000_000), period: .monthly), on: db)
            let requests = [BatchedAdmissionTests.request(key, hold: 100), BatchedAdmissionTests.request(key, hold: 100)]
            _ = try await db.read { try await Self.admission.reserve(batch: requests, on: $0) }
            let settled = try await db.read { db in
                try await db.query("""
                    CALL tollgate_post_settlements(\(requests.map(\.requestID)), \([Int64(30), 40]), \([Int32(1), 1]), \([Int32(1), 1]),
                        \([Int32(0), 0]), \([Int32(0), 0]), \([Int32(200), 200]), \([false, false]), \(["", ""]), \([Int32(-1), -1]), \([Int32(-1), -1]))
                    """, logger: db.logger).collect().first!.decode(([Bool], [Int64]).self).0
            }
            #expect(settled == [true, true])
            #expect(try await BatchedAdmissionTests.rows([key], db: db) == ["-1/0/70"])
        }
    }

    /// A replica that died leaves its tickets to the reaper: charged at their amount, estimated.
    @Test func theReaperChargesExpiredTickets() async throws {
        try await RepositoryTests.withMigratedDatabase { db in
            let acme = RepositoryTests.tenant("acme")
            _ = try await db.transaction { try await RepositoryTests.tenants.insert(acme, on: $0) }
            let key = try await BatchedAdmissionTests.key(acme, budget: Budget(limit: Money(nanos: 1_000_000), period: .monthly), on: db)
            #expect(try await Self.take(key, count: 3, ttl: 0, db: db).ticketIDs.count == 3)
            let reaped = try await db.read { try await Self.settlement.reapExpiredHolds(limit: 10, on: $0) }
            #expect(reaped == 3)
            #expect(try await BatchedAdmissionTests.rows([key], db: db) == ["-1/0/300"])
            #expect(try await Self.scalar("SELECT count(*)::int FROM usage_ledger WHERE estimated", Int.self, db: db) == 3)
        }
    }
}
