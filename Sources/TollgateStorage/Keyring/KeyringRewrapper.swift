import Foundation
import PostgresNIO
import TollgateDomain

/// Re-wraps every tenant data key under the keyring's primary master key, in small transactions,
/// so an old master key version can be retired. Safe to run while serving and to run again:
/// credentials are untouched (they are sealed with the data keys, which do not change).
public struct KeyringRewrapper: Sendable {
    let database: Database
    let keyring: MasterKeyring
    let tenants: TenantRepository

    public init(database: Database, keyring: MasterKeyring, tenants: TenantRepository) {
        self.database = database
        self.keyring = keyring
        self.tenants = tenants
    }

    public struct Result: Sendable, Equatable {
        public var rewrapped: Int64
        public var alreadyCurrent: Int64
    }

    public func rewrapAll(batchSize: Int = 100, afterwards: (Int64) async throws -> Void = { _ in }) async throws -> Result {
        let primary = Int(keyring.primaryVersion)
        let before = try await database.read { try await tenants.countByMasterKeyVersion(on: $0) }
        var rewrapped: Int64 = 0
        while true {
            let done = try await database.transaction { db in
                let batch = try await tenants.wrappedKeysNotUnder(version: primary, limit: batchSize, on: db)
                for (tenantID, wrapped) in batch {
                    let result = try keyring.rewrap(wrapped, tenantID: tenantID)
                    try await tenants.storeWrappedKey(tenantID, wrapped: result.wrapped, version: primary, on: db)
                }
                return batch.count
            }
            rewrapped += Int64(done)
            if done < batchSize { break }
        }
        try await afterwards(rewrapped)
        return Result(rewrapped: rewrapped, alreadyCurrent: before[primary] ?? 0)
    }
}
