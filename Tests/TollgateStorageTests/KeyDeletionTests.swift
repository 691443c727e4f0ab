import Foundation
import PostgresNIO
import Testing
import TollgateDomain
import TollgateTestSupport
@testable import TollgateStorage

/// migrations/0008: holds have no foreign keys (0007), so a trigger keeps a key with unsettled holds
/// from being deleted by hand.
@Suite struct KeyDeletionTests {
    static func deleteKey(_ key: UUID, db: Database) async throws {
        try await db.transaction { tx in
            _ = try await tx.query("DELETE FROM virtual_key_secrets WHERE key_id = \(key)", logger: tx.logger)
            _ = try await tx.query("DELETE FROM virtual_keys WHERE id = \(key)", logger: tx.logger)
        }
    }

    static func keyExists(_ key: UUID, db: Database) async throws -> Bool {
        try await db.read { db in
            try await db.query("SELECT count(*)::int FROM virtual_keys WHERE id = \(key)", logger: db.logger)
                .collect().first!.decode(Int.self) == 1
        }
    }

    @Test func aKeyWithUnsettledHoldsCannotBeDeleted() async throws {
        try await RepositoryTests.withMigratedDatabase { db in
            let acme = RepositoryTests.tenant("acme")
            _ = try await db.transaction { try await RepositoryTests.tenants.insert(acme, on: $0) }
            let key = try await BatchedAdmissionTests.key(acme, budget: Budget(limit: Money(nanos: 1_000_000), period: .monthly), on: db)
            let request = BatchedAdmissionTests.request(key, hold: 100)
            _ = try await db.read { try await BatchedAdmissionTests.admission.reserve(request, on: $0) }

            do {
                try await Self.deleteKey(key, db: db)
                Issue.record("a key with a hold was deleted")
            } catch let error as PSQLError {
                #expect(error.serverInfo?[.sqlState] == "23503")
                #expect(error.serverInfo?[.message]?.contains("requests admitted under it are not settled yet") == true)
            }
            #expect(try await Self.keyExists(key, db: db))

            // Settled: nothing refers to the key any more, and it can go.
            _ = try await db.read { try await BatchedAdmissionTests.settlement.settle(BatchedAdmissionTests.settle(request, cost: 50), on: $0) }
            try await Self.deleteKey(key, db: db)
            #expect(!(try await Self.keyExists(key, db: db)))
        }
    }
}
