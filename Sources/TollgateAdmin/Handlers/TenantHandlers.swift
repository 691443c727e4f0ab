import Foundation
import TollgateAdminAPI
import TollgateDomain
import TollgateStorage

extension AdminAPI {
    func createTenant(_ input: Operations.CreateTenant.Input) async throws -> Operations.CreateTenant.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        var validator = FieldValidator()
        validator.check(body.slug.range(of: "^[a-z0-9][a-z0-9-]{0,62}$", options: .regularExpression) != nil, "slug",
                        "must be 1 to 63 lower-case letters, digits or '-', starting with a letter or digit")
        validator.length(body.name, "name", max: 200)
        try validator.throwIfFailed()
        let budget = try body.budget?.domain(field: "budget")
        let limits = try body.limits?.domain(field: "limits") ?? RateLimits()
        let id = UUID.random()
        let wrapped = try keyring.wrapDataKey(MasterKeyring.generateDataKey(), tenantID: id)
        let now = self.now()
        let created = try await database.transaction { db in
            try await idempotency.run(key: input.headers.idempotencyKey, operation: "createTenant", tenantID: nil,
                                      request: body, containsSecret: false, on: db) {
                let tenant = try await tenants.insert(TenantRecord(
                    id: id, slug: body.slug, name: body.name, status: .active, currency: Currency(rawValue: body.currency.rawValue)!,
                    wrappedDataKey: wrapped, masterKeyVersion: Int(keyring.primaryVersion), budget: budget, limits: limits), on: db)
                if let budget {
                    try await budgets.applyLimit(tenantID: id, ownerID: id, ownerKind: "tenant", budget: budget, at: now, on: db)
                }
                let api = Schemas.Tenant(tenant)
                try await audit.record("tenant.create", target: "tenant", id: id, tenantID: id, diff: api, on: db)
                return api
            }
        }
        return .created(.init(body: .json(created)))
    }

    func listTenants(_ input: Operations.ListTenants.Input) async throws -> Operations.ListTenants.Output {
        let principal = try Principal.require()
        let limit = try pageLimit(input.query.limit)
        let cursor = try pageCursor(input.query.cursor)
        let only = principal.role == .platformAdmin ? nil : principal.tenantID
        let page = try await database.read { db in
            try await tenants.list(limit: limit, after: cursor,
                                   status: input.query.status.flatMap { TenantStatus(rawValue: $0.rawValue) }, only: only, on: db)
        }
        return .ok(.init(body: .json(.init(data: page.items.map(Schemas.Tenant.init), nextCursor: page.next?.encoded))))
    }

    func getTenant(_ input: Operations.GetTenant.Input) async throws -> Operations.GetTenant.Output {
        let tenant = try await database.read { try await existingTenant(input.path.tenantId, on: $0) }
        return .ok(.init(body: .json(.init(tenant))))
    }

    func updateTenant(_ input: Operations.UpdateTenant.Input) async throws -> Operations.UpdateTenant.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        let principal = try Principal.require()
        var validator = FieldValidator()
        validator.length(body.name, "name", max: 200)
        try validator.throwIfFailed()
        if body.status != nil, principal.role != .platformAdmin {
            throw Problem.forbidden("Only platform admins may suspend or reactivate a tenant")
        }
        let updated = try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db, forUpdate: true)
            guard let updated = try await tenants.update(
                tenant.id, name: body.name, status: body.status.flatMap { TenantStatus(rawValue: $0.rawValue) }, on: db)
            else { throw Problem.notFound("Tenant") }
            let action = switch body.status {
            case .suspended: "tenant.suspend"
            case .active where tenant.status == .suspended: "tenant.resume"
            default: "tenant.update"
            }
            try await audit.record(action, target: "tenant",
                                   id: tenant.id, tenantID: tenant.id, diff: body, on: db)
            return updated
        }
        return .ok(.init(body: .json(.init(updated))))
    }
}
