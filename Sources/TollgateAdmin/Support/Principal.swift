import Foundation
import TollgateDomain

/// The authenticated admin token a request acts as. Set by `AuthenticationMiddleware` for the
/// duration of one request, read by handlers and the audit log.
public struct Principal: Sendable, Hashable {
    public var tokenID: UUID
    public var role: AdminRole
    public var tenantID: UUID?

    @TaskLocal static var current: Principal?

    /// The principal of the request being handled; a route without one is a programming error
    /// (every `/v1` operation goes through the authentication middleware).
    static func require() throws -> Principal {
        guard let current else { throw Problem.unauthenticated }
        return current
    }

    /// Whether this principal may see the tenant's objects.
    func canAccess(tenant: UUID) -> Bool { role == .platformAdmin || tenantID == tenant }
}

/// The request id of the request being handled, for audit rows and logs.
enum RequestIdentity {
    @TaskLocal static var current: String?
}
