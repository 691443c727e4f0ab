import Foundation
import Logging
import Testing
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
