import HTTPTypes
import TollgateDomain

/// Who may call each operation of the admin API. Kept in one table so the role matrix test and a
/// reviewer can see every rule at once.
enum AccessPolicy {
    enum Rule {
        /// No token needed (health probes).
        case open
        /// Platform admins only.
        case platformOnly
        /// Any valid token; the handler narrows what a tenant token sees.
        case anyToken
        /// Routes under `/v1/tenants/{tenantId}`: a tenant token must belong to that tenant.
        case tenantPath
    }

    static func rule(for operationID: String) -> Rule {
        switch operationID {
        case "getHealth", "getReadiness":
            .open
        case "createTenant", "createPlatformToken", "listPlatformTokens", "setPrice", "deletePrice",
             "getKeyring", "rewrapKeyring":
            .platformOnly
        case "whoami", "listTenants", "getAdminToken", "revokeAdminToken", "listAudit", "listPrices":
            .anyToken
        default:
            .tenantPath
        }
    }

    static func isMutating(_ method: HTTPRequest.Method) -> Bool {
        method != .get && method != .head && method != .options
    }

    /// Decides whether `principal` may call the operation. Throws the problem to answer otherwise:
    /// 404 for another tenant's objects (their existence is not revealed), 403 for a role that
    /// may not do this.
    static func authorize(_ principal: Principal, operationID: String, method: HTTPRequest.Method,
                          pathTenantID: String?) throws {
        switch rule(for: operationID) {
        case .open:
            return
        case .platformOnly:
            guard principal.role == .platformAdmin else {
                throw Problem.forbidden("Only platform admins may \(operationID)")
            }
        case .anyToken:
            break
        case .tenantPath:
            if principal.role != .platformAdmin {
                guard let pathTenantID, pathTenantID.lowercased() == principal.tenantID?.uuidString.lowercased() else {
                    throw Problem.notFound("Tenant")
                }
            }
        }
        if isMutating(method), !principal.role.canMutate {
            throw Problem.forbidden("Viewer tokens cannot change anything")
        }
    }
}
