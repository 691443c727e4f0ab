import TollgateDomain
import TollgateStorage

/// Stage 2: may this key do this? Key and tenant active and not expired, endpoint family and model
/// allowed. (Admission re-checks status inside the database, so a revoke is never missed.)
enum Authorizer {
    static func authorize(_ key: ResolvedKey, family: EndpointFamily, model: String?) throws {
        switch key.keyStatus {
        case .revoked: throw ProxyError.forbidden("key_revoked", "This API key has been revoked.")
        case .expired: throw ProxyError.forbidden("key_expired", "This API key has expired.")
        case .active: break
        }
        guard key.tenantStatus == .active else {
            throw ProxyError.forbidden("tenant_suspended", "The team that owns this API key is suspended.")
        }
        let endpoints = EndpointAllowList(Set(key.allowedEndpoints.compactMap(EndpointFamily.init(rawValue:))))
        guard endpoints.allows(family) else {
            if family == .batch {
                throw ProxyError.forbidden("endpoint_not_allowed",
                    "Batch jobs are billed later and would bypass budgets; this key does not allow them.")
            }
            throw ProxyError.forbidden("endpoint_not_allowed", "This API key may not call the \(family.rawValue) endpoints.")
        }
        if let model {
            let models = (try? ModelAllowList(parsing: key.allowedModels)) ?? ModelAllowList([])
            guard models.allows(model) else {
                throw ProxyError.forbidden("model_not_allowed", "This API key may not use the model '\(model)'.")
            }
        }
    }
}
