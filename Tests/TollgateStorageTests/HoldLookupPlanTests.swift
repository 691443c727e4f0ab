import Foundation
import PostgresNIO
import Testing
import TollgateDomain
import TollgateTestSupport
@testable import TollgateStorage

/// migrations/0011: settlement and the reaper find holds through an index, whatever the planner
/// believes the table's size to be. A freshly migrated holds table is one page, so without 0011 the
/// planner reads it sequentially once statistics say so, and a plan cached while it is small keeps
/// doing so as it bloats.
@Suite struct HoldLookupPlanTests {
    /// Sequential scans of holds so far in the current transaction (not yet flushed to the
    /// cumulative statistics, so exact and immediate).
    static func holdSeqScans(_ tx: PostgresConnection) async throws -> Int {
        try await tx.query("SELECT coalesce(sum(seq_scan), 0)::int FROM pg_stat_xact_user_tables WHERE relname = 'holds'",
                           logger: tx.logger).collect().first!.decode(Int.self)
    }

    /// Settles `hold` through the batch function (the procedure commits, so it cannot run inside
    /// the transaction that reads the counters) and runs the reaper.
    static func settleAndReap(_ hold: UUID, on tx: PostgresConnection) async throws -> Bool {
        // Statistics that say what a quiet moment would: holds is one small page.
        _ = try await tx.query("ANALYZE holds", logger: tx.logger).collect()
        let settled = try await tx.query("""
            SELECT settled FROM tollgate_settle_batch(ARRAY[\(hold)]::uuid[], ARRAY[5]::bigint[], ARRAY[1], ARRAY[1],
                ARRAY[0], ARRAY[0], ARRAY[200], ARRAY[false], ARRAY['']::text[], ARRAY[1], ARRAY[1], ARRAY[false],
                ARRAY[false], ARRAY[\(hold)]::uuid[], ARRAY[-1]::bigint[], ARRAY['chat'], ARRAY[''], ARRAY[''], ARRAY[''])
            """, logger: tx.logger).collect().first!.decode(Bool.self)
        _ = try await tx.query("SELECT tollgate_reap_expired_holds(10)", logger: tx.logger).collect()
        return settled
    }

    @Test func settlementAndTheReaperNeverScanHoldsSequentially() async throws {
        try await RepositoryTests.withMigratedDatabase { db in
            let acme = RepositoryTests.tenant("acme")
            _ = try await db.transaction { try await RepositoryTests.tenants.insert(acme, on: $0) }
            let key = try await BatchedAdmissionTests.key(acme, budget: Budget(limit: Money(nanos: 1_000_000), period: .monthly),
                                                          limits: RateLimits(requestsPerMinute: 1_000), on: db)
            let requests = (0..<2).map { _ in BatchedAdmissionTests.request(key, hold: 100) }
            for request in requests {
                _ = try await db.read { try await BatchedAdmissionTests.admission.reserve(request, on: $0) }
            }

            let scans = try await db.transaction { tx -> Int in
                #expect(try await Self.settleAndReap(requests[0].requestID, on: tx))
                return try await Self.holdSeqScans(tx)
            }
            #expect(scans == 0)

            // The check can fail: the same calls without 0011's setting scan the one-page table.
            let control = try await db.transaction { tx -> Int in
                for function in ["tollgate_reap_expired_holds(integer)", Self.batchSignature] {
                    _ = try await tx.query("ALTER FUNCTION \(unescaped: function) RESET enable_seqscan", logger: tx.logger)
                }
                #expect(try await Self.settleAndReap(requests[1].requestID, on: tx))
                return try await Self.holdSeqScans(tx)
            }
            #expect(control > 0)
        }
    }

    static let batchSignature = """
        tollgate_settle_batch(uuid[], bigint[], integer[], integer[], integer[], integer[], integer[], boolean[], text[],
            integer[], integer[], boolean[], boolean[], uuid[], bigint[], text[], text[], text[], text[])
        """
}
