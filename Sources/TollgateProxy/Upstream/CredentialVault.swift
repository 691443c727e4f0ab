import Foundation
import TollgateDomain
import TollgateStorage

/// A tenant credential with its secret decrypted, ready to forward with.
struct UsableCredential: Sendable {
    let id: UUID
    let baseURL: String
    let weight: Int
    let secret: String
}

/// Decrypted credentials per tenant, kept in memory briefly (and dropped on change notifications)
/// so the hot path does not unwrap keys and decrypt on every request. Plaintexts never leave here
/// except into the upstream Authorization header.
final class CredentialVault: Sendable {
    private struct Entry { var credentials: [UsableCredential]; var expires: ContinuousClock.Instant }
    private let entries = Locked([UUID: Entry]())
    private let keyring: MasterKeyring
    private let database: Database
    private let directory: KeyDirectory
    private let ttl: Duration

    init(keyring: MasterKeyring, database: Database, directory: KeyDirectory, ttl: Duration = .seconds(60)) {
        self.keyring = keyring
        self.database = database
        self.directory = directory
        self.ttl = ttl
    }

    /// The credentials `key` may use, in the tenant's order.
    func credentials(for key: ResolvedKey) async throws -> [UsableCredential] {
        let now = ContinuousClock.now
        let all: [UsableCredential]
        if let cached = entries.withLock({ $0[key.tenantID] }), cached.expires > now {
            all = cached.credentials
        } else {
            let sealed: [UpstreamCredential]
            do {
                sealed = try await withDeadline(.seconds(3)) { [database, directory] in
                    try await database.read { try await directory.credentials(tenantID: key.tenantID, on: $0) }
                }
            } catch {
                throw ProxyError.unavailable("The gateway cannot reach its database; retry shortly.")
            }
            let cipher = CredentialCipher(dataKey: try keyring.unwrapDataKey(key.wrappedDataKey, tenantID: key.tenantID),
                                          tenantID: key.tenantID)
            all = try sealed.map { c in
                UsableCredential(id: c.id, baseURL: c.baseURL, weight: c.weight,
                                 secret: try cipher.decrypt(c.secretCiphertext, credentialID: c.id))
            }
            entries.withLock { $0[key.tenantID] = Entry(credentials: all, expires: now + ttl) }
        }
        guard !key.credentialIDs.isEmpty else { return all }
        let allowed = Set(key.credentialIDs)
        return all.filter { allowed.contains($0.id) }
    }

    func invalidate(tenantID: UUID?) {
        entries.withLock { entries in
            if let tenantID { entries[tenantID] = nil } else { entries.removeAll() }
        }
    }
}
