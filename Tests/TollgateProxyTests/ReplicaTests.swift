import AsyncHTTPClient
import Foundation
import MockMistral
import NIOCore
import Testing
import TollgateDomain
import TollgateStorage

/// Limits must hold jointly across replicas that share only the database.
@Suite("Three proxy replicas")
struct ReplicaTests {
    static let body = Data(#"{"model":"mistral-small-latest","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#.utf8)

    @Test func budgetHoldsAcrossReplicas() async throws {
        let budget: Int64 = 400_000
        try await ProxyHarness.run(KeyOptions(budget: Budget(limit: Money(nanos: budget), period: .lifetime)), replicas: 3, poolSize: 20) { h in
            let statuses = try await h.fire(count: 200, body: Self.body)
            let admitted = statuses.filter { $0 == 200 }.count
            #expect(statuses.contains(402))
            let rows = try await h.settled(expectedRows: admitted)
            #expect(rows.count == admitted)
            #expect(h.mock.requestLog.entries(path: "/v1/chat/completions").count == admitted)
            let window = try await h.budgetWindow(owner: h.seed.keyID)
            #expect(window.spent <= budget)
            #expect(window.reserved == 0)
        }
    }

    @Test func requestsPerMinuteIsEnforcedJointly() async throws {
        try await ProxyHarness.run(KeyOptions(limits: RateLimits(requestsPerMinute: 10)), replicas: 3) { h in
            let statuses = try await h.fire(count: 30, body: Self.body)
            #expect(statuses.filter { $0 == 200 }.count == 10, "\(statuses)")
            #expect(statuses.filter { $0 == 429 }.count == 20, "\(statuses)")
        }
    }

    @Test func concurrencyCapIsJoint() async throws {
        try await ProxyHarness.run(KeyOptions(limits: RateLimits(maxConcurrent: 3)), replicas: 3) { h in
            h.mock.updateConfiguration { $0.latency = .seconds(2) }  // all twelve overlap even on a slow machine
            let statuses = try await h.fire(count: 12, body: Self.body)
            #expect(statuses.filter { $0 == 200 }.count == 3, "\(statuses)")
        }
    }

    /// The same joint limits while every replica admits on tickets (a key in steady use on all of
    /// them, limits large enough for grants): never more than the limit, each request settled once,
    /// nothing left reserved or in flight once the key is idle.
    @Test func limitsHoldJointlyWhileReplicasAdmitOnTickets() async throws {
        let limit = 600
        try await ProxyHarness.run(KeyOptions(budget: Budget(limit: Money(nanos: 1_000_000_000_000), period: .lifetime),
                                              limits: RateLimits(requestsPerMinute: limit, maxConcurrent: 1_000)),
                                   replicas: 3) { h in
            let started = ContinuousClock.now
            let statuses = try await h.streams(perReplica: 2, requests: 150, body: Self.body)
            let elapsed = ContinuousClock.now - started
            let admitted = statuses.filter { $0 == 200 }.count
            #expect(statuses.allSatisfy { $0 == 200 || $0 == 429 }, "\(Set(statuses))")
            #expect(statuses.contains(429), "the limit was reached during the run")
            // Requests/min is a rate with a burst of the whole limit (GCRA): within the run, the
            // burst plus what the rate gave back meanwhile, never more.
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let allowed = limit + Int((seconds * Double(limit) / 60).rounded(.up))
            #expect(admitted <= allowed, "requests/min exceeded: \(admitted) admitted, \(allowed) allowed in \(elapsed)")
            let rows = try await h.settled(expectedRows: admitted)
            #expect(rows.count == admitted)
            #expect(h.mock.requestLog.entries(path: "/v1/chat/completions").count == admitted)
            let onTickets = try await h.ledgerRowsAdmittedOnTickets()
            #expect(onTickets >= admitted / 4, "\(onTickets) of \(admitted) admitted on tickets")
            // `settled` waited until no hold is left: every ticket was given back, whole.
            let window = try await h.budgetWindow(owner: h.seed.keyID)
            #expect(window.reserved == 0)
            #expect(window.spent == rows.reduce(0) { $0 + $1.costNanos })
            let inFlight = try await h.database.read { db in
                try await db.query("SELECT coalesce(sum(in_flight), 0)::int FROM limit_state", logger: db.logger)
                    .collect().first!.decode(Int.self)
            }
            #expect(inFlight == 0)
            print("tickets across replicas: \(admitted) of \(statuses.count) admitted (limit \(limit)), \(onTickets) on tickets")
        }
    }

    /// A budget spent down by every replica at once while they admit on tickets: never overspent,
    /// each admitted request settled once, nothing left reserved.
    @Test func budgetHoldsJointlyWhileReplicasAdmitOnTickets() async throws {
        let budget: Int64 = 1_000_000
        try await ProxyHarness.run(KeyOptions(budget: Budget(limit: Money(nanos: budget), period: .lifetime)), replicas: 3) { h in
            let statuses = try await h.streams(perReplica: 2, requests: 150, body: Self.body)
            let admitted = statuses.filter { $0 == 200 }.count
            #expect(statuses.allSatisfy { $0 == 200 || $0 == 402 }, "\(Set(statuses))")
            #expect(statuses.contains(402), "the budget ran out during the run")
            let rows = try await h.settled(expectedRows: admitted)
            #expect(rows.count == admitted)
            #expect(h.mock.requestLog.entries(path: "/v1/chat/completions").count == admitted)
            let onTickets = try await h.ledgerRowsAdmittedOnTickets()
            #expect(onTickets > 0, "no request was admitted on a ticket")
            // `settled` waited until no hold is left, tickets included.
            let window = try await h.budgetWindow(owner: h.seed.keyID)
            #expect(window.reserved == 0)
            #expect(window.spent <= budget)
            #expect(window.spent == rows.reduce(0) { $0 + $1.costNanos })
            print("budget across replicas on tickets: \(admitted) of \(statuses.count) admitted, \(onTickets) on tickets, spent \(window.spent) of \(budget)")
        }
    }

    @Test func revokeIsRefusedByEveryReplicaWithinOneSecond() async throws {
        try await ProxyHarness.run(replicas: 3) { h in
            // Warm every replica's key cache.
            #expect(try await h.fire(count: 3, body: Self.body).allSatisfy { $0 == 200 })
            try await h.database.transaction { db in
                _ = try await VirtualKeyRepository(logger: h.database.logger).revoke(tenantID: h.seed.tenantID, id: h.seed.keyID, on: db)
            }
            // Admission re-checks the key in the database, so the very next request is refused.
            let after = try await h.fire(count: 3, body: Self.body)
            #expect(after.allSatisfy { $0 == 403 }, "\(after)")
            #expect(h.mock.requestLog.count == 3)
        }
    }

    /// Cached key settings (here the model allow-list, which only the cache consults) follow an
    /// admin change on every replica within a second, through LISTEN/NOTIFY, not the cache TTL.
    @Test func allowListChangeReachesEveryReplicaWithinOneSecond() async throws {
        try await ProxyHarness.run(replicas: 3, configure: { $0.keyCacheTTL = .seconds(600) }) { h in
            #expect(try await h.fire(count: 3, body: Self.body).allSatisfy { $0 == 200 })
            var changes = VirtualKeyChanges()
            changes.allowedModels = ["codestral-*"]
            try await h.database.transaction { db in
                _ = try await VirtualKeyRepository(logger: h.database.logger).update(
                    tenantID: h.seed.tenantID, id: h.seed.keyID, changes, on: db)
            }
            // Requests sent one second after the change must all be refused (the cache TTL is 10 min,
            // so only the change notification can have done it).
            try await Task.sleep(for: .seconds(1))
            let statuses = try await h.fire(count: 3, body: Self.body)
            #expect(statuses == [403, 403, 403], "every replica refuses the model within 1 s")
        }
    }
}
