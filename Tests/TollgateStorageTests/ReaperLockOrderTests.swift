import Foundation
import PostgresNIO
import Testing
import TollgateDomain
import TollgateTestSupport
@testable import TollgateStorage

/// migrations/0012: the reaper locks limit rows in the global order, as settlement batches do, so
/// the two cannot wait for each other in a cycle.
@Suite struct ReaperLockOrderTests {
    @Test func theReaperAndASettlementBatchDoNotDeadlock() async throws {
        try await RepositoryTests.withMigratedDatabase { db in
            // Two teams with a requests/min limit, so every hold locks its team's limit row.
            var teams: [UUID: TenantRecord] = [:]
            for slug in ["acme", "beta"] {
                let team = RepositoryTests.tenant(slug, limits: RateLimits(requestsPerMinute: 1_000))
                _ = try await db.transaction { try await RepositoryTests.tenants.insert(team, on: $0) }
                teams[team.id] = team
            }
            // The global order is Postgres's uuid order.
            let ordered = try await db.read { db in
                try await db.query("SELECT id FROM tenants ORDER BY id", logger: db.logger).collect().map { try $0.decode(UUID.self) }
            }
            let (low, high) = (ordered[0], ordered[1])
            // Expired holds; the high team's expires first, so a reaper going by expiry takes its row first.
            for team in [high, low] {
                let key = try await BatchedAdmissionTests.key(try #require(teams[team]), on: db)
                var request = BatchedAdmissionTests.request(key, hold: 100)
                request.ttlSeconds = 0
                _ = try await db.read { try await BatchedAdmissionTests.admission.reserve(request, on: $0) }
            }

            // A settlement batch's locking: the low row, then (once the reaper waits) the high one.
            // The reaper runs on its own connection and finishes after this transaction commits.
            let reaper = try await db.transaction { tx -> Task<Int, any Error> in
                _ = try await tx.query("SELECT 1 FROM limit_state WHERE owner_id = \(low) FOR UPDATE", logger: tx.logger).collect()
                let reaper = Task { try await db.read { try await BatchedAdmissionTests.settlement.reapExpiredHolds(limit: 10, on: $0) } }
                var waiting = false
                for _ in 0..<250 where !waiting {
                    try await Task.sleep(for: .milliseconds(20))
                    waiting = try await AdmissionTicketTests.scalar("""
                        SELECT count(*)::int FROM pg_stat_activity
                        WHERE datname = current_database() AND wait_event_type = 'Lock'
                          AND query LIKE '%tollgate_reap_expired_holds%'
                        """, Int.self, db: db) > 0
                }
                #expect(waiting, "the reaper never waited for the low row")
                // The old reaper held the high row by now: this waited for it while it waited for the
                // low one, and Postgres aborted one of the two (40P01).
                _ = try await tx.query("SELECT 1 FROM limit_state WHERE owner_id = \(high) FOR UPDATE", logger: tx.logger).collect()
                return reaper
            }
            let reaped = try await reaper.value
            #expect(reaped == 2)
            #expect(try await AdmissionTicketTests.scalar("SELECT count(*)::int FROM holds", Int.self, db: db) == 0)
            // Charged at their holds, estimated, once each.
            #expect(try await AdmissionTicketTests.scalar(
                "SELECT count(*)::int FROM usage_ledger WHERE estimated AND cost_nanos = 100", Int.self, db: db) == 2)
        }
    }
}
