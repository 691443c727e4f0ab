import Foundation
import PostgresNIO
import Testing
import TollgateDomain
import TollgateTestSupport
@testable import TollgateStorage

/// Admission and settlement answer only after their commit (migrations/0005): a hold the database
/// fails to commit is never reported as admitted, and a settlement that fails at commit is never
/// reported as posted. The commit failure is injected with a deferred constraint trigger, which
/// runs at commit time.
@Suite struct CommitBeforeAnswerTests {
    typealias B = BatchedAdmissionTests

    /// Makes every commit that inserted a row with `column` = 13 into `table` fail.
    static func failCommits(of table: String, where column: String, on db: Database) async throws {
        try await db.read { db in
            try await db.query(PostgresQuery(unsafeSQL: """
                CREATE FUNCTION refuse_thirteen_\(table)() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.\(column) = 13 THEN RAISE EXCEPTION 'refused at commit'; END IF;
                    RETURN NULL;
                END $$
                """), logger: db.logger)
            try await db.query(PostgresQuery(unsafeSQL: """
                CREATE CONSTRAINT TRIGGER refuse_thirteen AFTER INSERT ON \(table) DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION refuse_thirteen_\(table)()
                """), logger: db.logger)
        }
    }

    @Test func aHoldThatFailsToCommitIsNotAdmitted() async throws {
        try await RepositoryTests.withMigratedDatabase { db in
            let tenant = RepositoryTests.tenant("commit")
            _ = try await db.transaction { try await RepositoryTests.tenants.insert(tenant, on: $0) }
            let key = try await B.key(tenant, budget: Budget(limit: Money(nanos: 1_000), period: .monthly), on: db)
            try await Self.failCommits(of: "holds", where: "amount_nanos", on: db)

            #expect(try await db.read { try await B.admission.reserve(B.request(key, hold: 12), on: $0) }.kind == "ok")
            await #expect(throws: (any Error).self) {
                try await db.read { try await B.admission.reserve(B.request(key, hold: 13), on: $0) }
            }
            await #expect(throws: (any Error).self) {
                try await db.read { try await B.admission.reserve(batch: [B.request(key, hold: 12), B.request(key, hold: 13)], on: $0) }
            }
            // Only the first hold exists, and only it is reserved.
            #expect(try await B.reserved(owner: key, db: db) == 12)
        }
    }

    @Test func aSettlementThatFailsToCommitIsNotPosted() async throws {
        try await RepositoryTests.withMigratedDatabase { db in
            let tenant = RepositoryTests.tenant("settle-commit")
            _ = try await db.transaction { try await RepositoryTests.tenants.insert(tenant, on: $0) }
            let key = try await B.key(tenant, budget: Budget(limit: Money(nanos: 1_000), period: .monthly), on: db)
            let requests = (0..<3).map { _ in B.request(key, hold: 100) }
            for r in requests { _ = try await db.read { try await B.admission.reserve(r, on: $0) } }
            // Every partition of the ledger, whichever month the rows land in.
            let partitions = try await db.read { db in
                try await db.query("SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'usage_ledger'::regclass",
                                   logger: db.logger).collect().map { try $0.decode(String.self) }
            }
            #expect(!partitions.isEmpty)
            for partition in partitions { try await Self.failCommits(of: partition, where: "cost_nanos", on: db) }

            #expect(try await db.read { try await B.settlement.settle(B.settle(requests[0], cost: 12), on: $0) }.settled)
            await #expect(throws: (any Error).self) {
                try await db.read { try await B.settlement.settle(B.settle(requests[1], cost: 13), on: $0) }
            }
            await #expect(throws: (any Error).self) {
                try await db.read { try await B.settlement.settle(batch: [B.settle(requests[2], cost: 12), B.settle(requests[1], cost: 13)], on: $0) }
            }
            #expect(try await B.spent(owner: key, db: db) == 12)
            #expect(try await B.reserved(owner: key, db: db) == 200)
        }
    }
}
