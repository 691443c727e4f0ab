import Foundation
import Logging
import PostgresNIO
import Testing
import TollgateDomain
import TollgateStorage
@testable import TollgateProxy

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
