import Foundation
import Logging
import Testing
import PostgresNIO
import TollgateDomain
import TollgateStorage
@testable import TollgateProxy

@Suite("Settlement refused by the database")
struct SettlementRefusalTests {
    /// One settlement Postgres refuses for good (here: a cost that would make spent negative, a
    /// CHECK violation) must not block the others queued with it: they post, and the refused one
    /// stays in the journal, unacknowledged, with its hold left for the reaper.
    @Test func aRefusedSettlementDoesNotBlockTheOthers() async throws {
        try await ProxyHarness.run(KeyOptions(budget: Budget(limit: Money(nanos: 1_000_000), period: .monthly))) { h in
            let admission = AdmissionStore(logger: h.database.logger)
            let requests = (0..<5).map { _ in
                ReservationRequest(requestID: UUID(), keyID: h.seed.keyID, hold: Money(nanos: 100), tokens: 10, proxyID: "refusal-test",
                                   ttlSeconds: 600, endpoint: "chat", model: "mistral-small-latest", metadataJSON: nil, traceparent: nil)
            }
            for r in requests { #expect(try await h.database.read { try await admission.reserve(r, on: $0) } == .admitted(remainingRequests: nil, remainingTokens: nil)) }

            let directory = NSTemporaryDirectory() + "tollgate-refusal-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let journal = try SettlementJournal(directory: directory, name: "t")
            let queue = SettlementQueue(database: h.database, journal: journal, logger: h.database.logger)
            let running = Task { try await queue.run() }
            defer { running.cancel() }

            let poisoned = requests[2].requestID
            for r in requests {
                let cost = r.requestID == poisoned ? Money(nanos: -1_000_000_000) : Money(nanos: 40)
                queue.submit(Settlement(requestID: r.requestID, cost: cost, usage: Usage(promptTokens: 1, completionTokens: 1),
                                        statusCode: 200, estimated: false, credentialID: nil, upstreamLatencyMs: 1, totalLatencyMs: 2))
            }
            // The four others settle; the refused one keeps its hold.
            var ledger: Set<UUID> = []
            for _ in 0..<500 {
                ledger = Set(try await h.database.read { db in
                    try await db.query("SELECT request_id FROM usage_ledger", logger: db.logger).collect().map { try $0.decode(UUID.self) }
                })
                if ledger.count == 4 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(ledger == Set(requests.map(\.requestID)).subtracting([poisoned]))
            let holds = try await h.database.read { db in
                try await db.query("SELECT request_id FROM holds", logger: db.logger).collect().map { try $0.decode(UUID.self) }
            }
            #expect(holds == [poisoned])
            // Counted as posted just after the rows become visible.
            for _ in 0..<500 where queue.hasUnposted { try await Task.sleep(for: .milliseconds(10)) }
            #expect(!queue.hasUnposted, "waiters are not held up by the refused settlement")
            // Only the refused settlement is left for the next start's replay (acknowledgements are
            // written just after posting, so poll briefly).
            var left: [UUID] = []
            for _ in 0..<500 {
                left = try SettlementJournal(directory: directory, name: "t").unacknowledged().map(\.requestID)
                if left == [poisoned] { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(left == [poisoned])
        }
    }
}

@Suite("Second tries of refusals")
struct SecondTryTests {
    static func request(_ key: UUID, hold: Int64) -> ReservationRequest {
        ReservationRequest(requestID: UUID(), keyID: key, hold: Money(nanos: hold), tokens: 10, proxyID: "second-try-test",
                           ttlSeconds: 600, endpoint: "chat", model: "mistral-small-latest", metadataJSON: nil, traceparent: nil)
    }

    /// A refusal confirmed by a second try spares the key's next refusals theirs (a client
    /// hammering an exhausted budget costs one reservation per refusal, not two plus a wait),
    /// until the key is admitted again. (A long memory: the parallel suite can starve this test.)
    @Test func aConfirmedRefusalIsNotTriedTwiceAgain() async throws {
        try await ProxyHarness.run(KeyOptions(budget: Budget(limit: Money(nanos: 1_000), period: .monthly))) { h in
            let directory = NSTemporaryDirectory() + "tollgate-second-try-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let queue = SettlementQueue(database: h.database, journal: try SettlementJournal(directory: directory, name: "t"),
                                        logger: h.database.logger)
            let gate = PostgresAdmissionGate(database: h.database, store: AdmissionStore(logger: h.database.logger),
                                             pendingSettlements: queue, confirmedRefusalMemory: .seconds(600))
            let key = h.seed.keyID
            #expect(try await gate.admit(Self.request(key, hold: 1_000)) == .admitted(remainingRequests: nil, remainingTokens: nil))
            for _ in 0..<10 {
                guard case .budgetExhausted = try await gate.admit(Self.request(key, hold: 100)) else {
                    Issue.record("expected a budget refusal")
                    return
                }
            }
            #expect(gate.secondTries == 1, "only the first refusal was tried twice")
            // Admitted again (a hold of nothing still fits): the next refusal gets its second try.
            #expect(try await gate.admit(Self.request(key, hold: 0)) == .admitted(remainingRequests: nil, remainingTokens: nil))
            guard case .budgetExhausted = try await gate.admit(Self.request(key, hold: 100)) else {
                Issue.record("expected a budget refusal")
                return
            }
            #expect(gate.secondTries == 2)
        }
    }
}

@Suite("Waiting for settlements to post")
struct SettlementWaitTests {
    static func settlement() -> Settlement {
        Settlement(requestID: UUID(), cost: Money(nanos: 1), usage: Usage(promptTokens: 1, completionTokens: 1), statusCode: 200,
                   estimated: false, credentialID: nil, upstreamLatencyMs: 1, totalLatencyMs: 2)
    }

    /// A queue that never posts (not running): waits end at their limit, or at once when cancelled.
    @Test func aWaitEndsAtItsLimitOrWhenCancelled() async throws {
        try await ProxyHarness.run { h in
            let directory = NSTemporaryDirectory() + "tollgate-wait-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let queue = SettlementQueue(database: h.database, journal: try SettlementJournal(directory: directory, name: "t"),
                                        logger: h.database.logger)
            queue.submit(Self.settlement())
            let clock = ContinuousClock()
            var started = clock.now
            await queue.waitUntilPosted(limit: .milliseconds(200))
            #expect(clock.now - started >= .milliseconds(190), "not before its limit")

            started = clock.now
            let waiting = Task { await queue.waitUntilPosted(limit: .seconds(60)) }
            try await Task.sleep(for: .milliseconds(50))
            waiting.cancel()
            await waiting.value
            #expect(clock.now - started < .seconds(30), "a cancelled wait ends at once, not at its limit")
            #expect(queue.hasUnposted)
        }
    }

    /// With the queue running, a wait ends when its settlements have posted, long before its limit.
    @Test func aWaitEndsWhenItsSettlementsHavePosted() async throws {
        try await ProxyHarness.run(KeyOptions(budget: Budget(limit: Money(nanos: 1_000_000), period: .monthly))) { h in
            let request = ReservationRequest(requestID: UUID(), keyID: h.seed.keyID, hold: Money(nanos: 100), tokens: 10,
                                             proxyID: "wait-test", ttlSeconds: 600, endpoint: "chat", model: "mistral-small-latest",
                                             metadataJSON: nil, traceparent: nil)
            #expect(try await h.database.read { try await AdmissionStore(logger: h.database.logger).reserve(request, on: $0) }
                    == .admitted(remainingRequests: nil, remainingTokens: nil))
            let directory = NSTemporaryDirectory() + "tollgate-wait-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let queue = SettlementQueue(database: h.database, journal: try SettlementJournal(directory: directory, name: "t"),
                                        logger: h.database.logger)
            let running = Task { try await queue.run() }
            defer { running.cancel() }
            var settlement = Self.settlement()
            settlement.requestID = request.requestID
            queue.submit(settlement)
            let started = ContinuousClock.now
            await queue.waitUntilPosted(limit: .seconds(60))
            #expect(ContinuousClock.now - started < .seconds(30))
            #expect(!queue.hasUnposted)
            let rows = try await h.database.read { db in
                try await db.query("SELECT count(*) FROM usage_ledger WHERE request_id = \(request.requestID)", logger: db.logger)
                    .collect().map { try $0.decode(Int.self) }
            }
            #expect(rows == [1], "posted means visible")
        }
    }
}

@Suite("Settlement queue cancelled while the database is unreachable")
struct SettlementCancellationTests {
    /// The post loop retries an unreachable database with backoff; once cancelled it must stop
    /// (the settlements stay in the journal), not retry in a tight loop.
    @Test func aCancelledQueueStopsRetrying() async throws {
        let logger = Logger(label: "cancel-test")
        // A client that is never run: every lease waits, so every post fails at its deadline.
        let client = PostgresClient(configuration: .init(host: "127.0.0.1", port: 1, username: "nobody", password: nil,
                                                          database: "nothing", tls: .disable), backgroundLogger: logger)
        let directory = NSTemporaryDirectory() + "tollgate-cancel-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let queue = SettlementQueue(database: Database(client: client, logger: logger),
                                    journal: try SettlementJournal(directory: directory, name: "t"), logger: logger)
        queue.submit(SettlementWaitTests.settlement())
        let ended = Locked(false)
        let running = Task {
            try? await queue.run()
            ended.withLock { $0 = true }
        }
        try await Task.sleep(for: .milliseconds(300))
        running.cancel()
        for _ in 0..<2000 where !ended.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(ended.withLock { $0 }, "the queue stopped once cancelled")
        #expect(try SettlementJournal(directory: directory, name: "t").unacknowledged().count == 1, "kept for the next start")
    }
}
