import Foundation
import PostgresNIO
import TollgateAdminAPI
import TollgateDomain
import TollgateStorage

extension AdminAPI {
    func getTenantBudget(_ input: Operations.GetTenantBudget.Input) async throws -> Operations.GetTenantBudget.Output {
        let status = try await database.read { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            return try await budgetStatus(ownerID: tenant.id, budget: tenant.budget, currency: tenant.currency, on: db)
        }
        return .ok(.init(body: .json(status)))
    }

    func setTenantBudget(_ input: Operations.SetTenantBudget.Input) async throws -> Operations.SetTenantBudget.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        let budget = try body.domain(field: "budget")
        let now = self.now()
        let status = try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db, forUpdate: true)
            _ = try await tenants.setBudget(tenant.id, budget, on: db)
            try await budgets.applyLimit(tenantID: tenant.id, ownerID: tenant.id, ownerKind: "tenant", budget: budget, at: now, on: db)
            try await audit.record("tenant.budget.set", target: "tenant", id: tenant.id, tenantID: tenant.id, diff: body, on: db)
            return try await budgetStatus(ownerID: tenant.id, budget: budget, currency: tenant.currency, on: db)
        }
        return .ok(.init(body: .json(status)))
    }

    func deleteTenantBudget(_ input: Operations.DeleteTenantBudget.Input) async throws -> Operations.DeleteTenantBudget.Output {
        try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db, forUpdate: true)
            _ = try await tenants.setBudget(tenant.id, nil, on: db)
            try await audit.record("tenant.budget.delete", target: "tenant", id: tenant.id, tenantID: tenant.id,
                                   diff: ["budget": tenant.budget.map(Schemas.Budget.init)], on: db)
        }
        return .noContent(.init())
    }

    func getTenantLimits(_ input: Operations.GetTenantLimits.Input) async throws -> Operations.GetTenantLimits.Output {
        let tenant = try await database.read { try await existingTenant(input.path.tenantId, on: $0) }
        return .ok(.init(body: .json(.init(tenant.limits))))
    }

    func setTenantLimits(_ input: Operations.SetTenantLimits.Input) async throws -> Operations.SetTenantLimits.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        let limits = try body.domain(field: "limits")
        let updated = try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db, forUpdate: true)
            guard let updated = try await tenants.setLimits(tenant.id, limits, on: db) else { throw Problem.notFound("Tenant") }
            try await audit.record("tenant.limits.set", target: "tenant", id: tenant.id, tenantID: tenant.id, diff: body, on: db)
            return updated
        }
        return .ok(.init(body: .json(.init(updated.limits))))
    }

    func getKeyBudget(_ input: Operations.GetKeyBudget.Input) async throws -> Operations.GetKeyBudget.Output {
        let status = try await database.read { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            let key = try await existingKey(tenant: tenant, input.path.keyId, on: db)
            return try await budgetStatus(ownerID: key.id, budget: key.budget, currency: tenant.currency, on: db)
        }
        return .ok(.init(body: .json(status)))
    }

    func setKeyBudget(_ input: Operations.SetKeyBudget.Input) async throws -> Operations.SetKeyBudget.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        let budget = try body.domain(field: "budget")
        let now = self.now()
        let status = try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            let key = try await existingKey(tenant: tenant, input.path.keyId, on: db, forUpdate: true)
            _ = try await keys.setBudget(tenantID: tenant.id, id: key.id, budget, on: db)
            try await budgets.applyLimit(tenantID: tenant.id, ownerID: key.id, ownerKind: "key", budget: budget, at: now, on: db)
            try await audit.record("key.budget.set", target: "key", id: key.id, tenantID: tenant.id, diff: body, on: db)
            return try await budgetStatus(ownerID: key.id, budget: budget, currency: tenant.currency, on: db)
        }
        return .ok(.init(body: .json(status)))
    }

    func deleteKeyBudget(_ input: Operations.DeleteKeyBudget.Input) async throws -> Operations.DeleteKeyBudget.Output {
        try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            let key = try await existingKey(tenant: tenant, input.path.keyId, on: db, forUpdate: true)
            _ = try await keys.setBudget(tenantID: tenant.id, id: key.id, nil, on: db)
            try await audit.record("key.budget.delete", target: "key", id: key.id, tenantID: tenant.id,
                                   diff: ["budget": key.budget.map(Schemas.Budget.init)], on: db)
        }
        return .noContent(.init())
    }

    func getKeyLimits(_ input: Operations.GetKeyLimits.Input) async throws -> Operations.GetKeyLimits.Output {
        let key = try await database.read { db in
            try await existingKey(tenant: try await existingTenant(input.path.tenantId, on: db), input.path.keyId, on: db)
        }
        return .ok(.init(body: .json(.init(key.limits))))
    }

    func setKeyLimits(_ input: Operations.SetKeyLimits.Input) async throws -> Operations.SetKeyLimits.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        let limits = try body.domain(field: "limits")
        let updated = try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            let key = try await existingKey(tenant: tenant, input.path.keyId, on: db, forUpdate: true)
            guard let updated = try await keys.setLimits(tenantID: tenant.id, id: key.id, limits, on: db) else {
                throw Problem.notFound("Key")
            }
            try await audit.record("key.limits.set", target: "key", id: key.id, tenantID: tenant.id, diff: body, on: db)
            return updated
        }
        return .ok(.init(body: .json(.init(updated.limits))))
    }

    func budgetStatus(ownerID: UUID, budget: Budget?, currency: Currency, on db: PostgresConnection) async throws -> Schemas.BudgetStatus {
        let apiCurrency = Schemas.Currency(rawValue: currency.rawValue)!
        guard let budget else { return .init(currency: apiCurrency) }
        let usage = try await budgets.currentUsage(ownerID: ownerID, budget: budget, at: now(), on: db)
        return .init(currency: apiCurrency, budget: .init(budget), windowStart: usage.window.start, windowEnd: usage.window.end,
                     spent: usage.spent.decimalString, reserved: usage.reserved.decimalString,
                     remaining: usage.remaining.decimalString)
    }
}
