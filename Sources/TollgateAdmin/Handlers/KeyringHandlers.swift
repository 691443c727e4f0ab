import Foundation
import TollgateAdminAPI
import TollgateDomain
import TollgateStorage

extension AdminAPI {
    func getKeyring(_ input: Operations.GetKeyring.Input) async throws -> Operations.GetKeyring.Output {
        let counts = try await database.read { try await tenants.countByMasterKeyVersion(on: $0) }
        return .ok(.init(body: .json(.init(
            primaryVersion: Int(keyring.primaryVersion), versions: keyring.versions.map { Int($0) },
            tenantsByVersion: counts.sorted { $0.key < $1.key }.map { .init(version: $0.key, tenants: $0.value) }))))
    }

    func rewrapKeyring(_ input: Operations.RewrapKeyring.Input) async throws -> Operations.RewrapKeyring.Output {
        let result = try await KeyringRewrapper(database: database, keyring: keyring, tenants: tenants).rewrapAll { count in
            try await database.transaction { db in
                try await audit.record("keyring.rewrap", target: "keyring", id: nil, tenantID: nil,
                                       diff: ["primaryVersion": Int64(keyring.primaryVersion), "rewrapped": count], on: db)
            }
        }
        return .ok(.init(body: .json(.init(primaryVersion: Int(keyring.primaryVersion), rewrapped: result.rewrapped,
                                           alreadyCurrent: result.alreadyCurrent))))
    }
}
