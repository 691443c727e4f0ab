import Foundation
import Logging
import PostgresNIO
import TollgateAdminAPI
import TollgateDomain
import TollgateStorage

/// Implements the generated `APIProtocol`: one extension per resource in this folder.
/// Authentication and the tenant check on `/v1/tenants/{tenantId}` paths already happened in
/// `AuthenticationMiddleware`; handlers still scope every query by tenant id.
struct AdminAPI: APIProtocol {
    let database: Database
    let keyring: MasterKeyring
    let hasher: SecretHasher
    let upstreamPolicy: UpstreamURLPolicy
    let migrations: [Migration]
    let logger: Logger
    let now: @Sendable () -> Date

    let tenants: TenantRepository
    let tokens: AdminTokenRepository
    let credentials: CredentialRepository
    let keys: VirtualKeyRepository
    let budgets: BudgetRepository
    let prices: PriceRepository
    let usage: UsageRepository
    let audit: AuditTrail
    let auditLog: AuditRepository
    let idempotency: Idempotency

    init(database: Database, keyring: MasterKeyring, hasher: SecretHasher, upstreamPolicy: UpstreamURLPolicy,
         migrations: [Migration], logger: Logger, now: @escaping @Sendable () -> Date = Date.init) {
        self.database = database
        self.keyring = keyring
        self.hasher = hasher
        self.upstreamPolicy = upstreamPolicy
        self.migrations = migrations
        self.logger = logger
        self.now = now
        tenants = TenantRepository(logger: logger)
        tokens = AdminTokenRepository(logger: logger)
        credentials = CredentialRepository(logger: logger)
        keys = VirtualKeyRepository(logger: logger)
        budgets = BudgetRepository(logger: logger)
        prices = PriceRepository(logger: logger)
        usage = UsageRepository(logger: logger)
        auditLog = AuditRepository(logger: logger)
        audit = AuditTrail(repository: auditLog)
        idempotency = Idempotency(repository: IdempotencyRepository(logger: logger), keyring: keyring)
    }

    /// The tenant of a `/v1/tenants/{tenantId}` path, which must exist.
    func existingTenant(_ text: String, on db: PostgresConnection, forUpdate: Bool = false) async throws -> TenantRecord {
        let id = try parseID(text, "Tenant")
        guard let tenant = try await tenants.get(id, on: db, forUpdate: forUpdate) else { throw Problem.notFound("Tenant") }
        return tenant
    }
}

