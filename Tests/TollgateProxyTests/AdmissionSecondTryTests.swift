import Foundation
import Testing
import TollgateDomain
import TollgateStorage
@testable import TollgateProxy

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
