import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import TollgateStorage

/// Keeps the caches honest: LISTENs on `tollgate_changes` (sent by triggers on keys, key secrets,
/// tenants and credentials) and drops what each notification names, so an admin change reaches
/// this replica within milliseconds. If the connection drops, notifications may have been missed,
/// so every cache is flushed on reconnect; the caches' TTL is the safety net behind this.
struct ChangeListener: Service {
    let client: PostgresClient
    let keys: KeyCache
    let vault: CredentialVault
    let prices: PriceCatalog
    /// Pooled admission tickets were granted under the old rules: any change gives them back.
    var tickets: TicketedAdmissionGate? = nil
    let logger: Logger

    private struct Change: Decodable {
        let table: String
        let id: String?
        let tenant_id: String?
    }

    func run() async throws {
        var delay: Duration = .milliseconds(200)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown {
                    try await client.withConnection { connection in
                        try await connection.listen(on: "tollgate_changes") { notifications in
                            flushAll()
                            for try await notification in notifications { apply(notification.payload) }
                        }
                    }
                }
            } catch {
                if Task.isCancelled || Task.isShuttingDownGracefully { return }
                logger.warning("change listener disconnected; caches flushed", metadata: ["retry_in": "\(delay)"])
                flushAll()
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    func apply(_ payload: String) {
        guard let change = try? JSONDecoder().decode(Change.self, from: Data(payload.utf8)) else {
            flushAll()
            return
        }
        tickets?.dropAll()
        let tenantID = change.tenant_id.flatMap(UUID.init(uuidString:))
        let id = change.id.flatMap(UUID.init(uuidString:))
        switch change.table {
        case "virtual_keys", "virtual_key_secrets":
            keys.invalidate(keyID: id, tenantID: nil)
        case "tenants":
            keys.invalidate(keyID: nil, tenantID: tenantID)
            vault.invalidate(tenantID: tenantID)
            prices.invalidateAll()
        case "credentials":
            vault.invalidate(tenantID: tenantID)
        default:
            flushAll()
        }
    }

    private func flushAll() {
        tickets?.dropAll()
        keys.invalidateAll()
        vault.invalidate(tenantID: nil)
        prices.invalidateAll()
    }
}

/// Settles holds whose proxy died (expired), at the reserved amount, marked estimated. Every
/// replica runs one; `SKIP LOCKED` in the database makes them share the work safely.
struct HoldReaper: Service {
    let database: Database
    let interval: Duration
    let logger: Logger

    func run() async throws {
        let store = SettlementStore(logger: logger)
        while !Task.isShuttingDownGracefully {
            do {
                let reaped = try await database.read { try await store.reapExpiredHolds(limit: 500, on: $0) }
                if reaped > 0 { logger.warning("settled expired holds at their reserved amount", metadata: ["count": "\(reaped)"]) }
            } catch {
                logger.debug("reaper could not reach the database")
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
