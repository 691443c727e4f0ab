import Foundation
import Testing
import TollgateDomain
import TollgateStorage
@testable import TollgateProxy

@Suite("Settlement journal")
struct SettlementJournalTests {
    static let full = Settlement(
        requestID: UUID(), cost: Money(nanos: 1_234_567), usage: Usage(promptTokens: 12, completionTokens: 34, cachedTokens: 5, pages: 2),
        statusCode: 499, estimated: true, credentialID: UUID(), upstreamLatencyMs: 17, totalLatencyMs: 25)
    static let sparse = Settlement(
        requestID: UUID(), cost: .zero, usage: Usage(), statusCode: 503, estimated: false, credentialID: nil,
        upstreamLatencyMs: nil, totalLatencyMs: nil)

    static let onTicket = Settlement(
        requestID: UUID(), cost: Money(nanos: 9), usage: Usage(promptTokens: 1), statusCode: 200, estimated: false,
        credentialID: nil, upstreamLatencyMs: 1, totalLatencyMs: 2,
        ledger: LedgerDetail(requestID: UUID(), startedAt: Date(), endpoint: "chat", model: "mistral-small-latest",
                             metadataJSON: "{\"a\":\"x\\\"y\\n\u{1}\"}", traceparent: "00-a-b-01"))
    static let release = Settlement.release(ticket: UUID())

    /// The hand-written journal line reads back, field for field, with the Decodable the replay uses.
    @Test(arguments: [full, sparse, onTicket, release])
    func handWrittenLineDecodes(_ settlement: Settlement) throws {
        let decoded = try JSONDecoder().decode(Settlement.self, from: Data(settlement.journalJSON.utf8))
        #expect(decoded == settlement)
    }

    /// Appended batches are replayed until acknowledged, and only those.
    @Test func unacknowledgedSettlementsAreReplayed() async throws {
        let directory = NSTemporaryDirectory() + "tollgate-journal-test-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let journal = try SettlementJournal(directory: directory, name: "t")
        try await journal.append([Self.full, Self.sparse])
        try await journal.acknowledge([Self.full.requestID])
        let reopened = try SettlementJournal(directory: directory, name: "t")
        #expect(try reopened.unacknowledged() == [Self.sparse])
    }

    /// The journal is truncated only when nothing is outstanding and it has grown past the
    /// threshold (truncation costs an fsync, so not after every quiet moment).
    @Test func compactsOnlyWhenIdleAndLarge() async throws {
        let directory = NSTemporaryDirectory() + "tollgate-journal-test-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let journal = try SettlementJournal(directory: directory, name: "t")
        let path = directory + "/settlements-t.journal"
        func size() throws -> Int { (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1 }

        try await journal.append([Self.full])
        try await journal.acknowledge([Self.full.requestID])
        try await journal.compactIfIdle()
        #expect(try size() > 0, "small journal kept")

        var batch: [Settlement] = []
        while batch.count * 200 < SettlementJournal.compactionThreshold + 1000 {
            var s = Self.sparse
            s.requestID = UUID()
            batch.append(s)
        }
        try await journal.append(batch)
        try await journal.acknowledge(Array(batch.dropLast().map(\.requestID)))
        try await journal.compactIfIdle()
        #expect(try size() > SettlementJournal.compactionThreshold, "one settlement still outstanding: kept")
        try await journal.acknowledge([batch.last!.requestID])
        try await journal.compactIfIdle()
        #expect(try size() == 0)
    }
}
