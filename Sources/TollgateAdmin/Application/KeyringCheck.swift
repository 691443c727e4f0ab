import TollgateDomain
import TollgateStorage

/// Refuses to serve when a tenant's data key is wrapped by a master key version the configured
/// keyring lacks: better to stop at start, naming the version, than to fail every credential
/// operation of those tenants later.
struct KeyringCheck: Sendable {
    let database: Database
    let keyring: MasterKeyring

    func requireEveryVersionInUse() async throws {
        let inUse = try await database.read { try await TenantRepository(logger: database.logger).countByMasterKeyVersion(on: $0) }
        let missing = inUse.keys.filter { !keyring.versions.contains(UInt32($0)) }.sorted()
        guard missing.isEmpty else {
            let versions = missing.map(String.init).joined(separator: ", ")
            throw ConfigurationError(
                "tenant data keys are wrapped with master key version(s) \(versions), which TOLLGATE_MASTER_KEYS does not contain; "
                + "add them back (rewrap with `tollgate keyring rewrap` before retiring a version)")
        }
    }
}
