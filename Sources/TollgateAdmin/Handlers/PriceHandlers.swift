import Foundation
import TollgateAdminAPI
import TollgateDomain
import TollgateStorage

extension AdminAPI {
    func listPrices(_ input: Operations.ListPrices.Input) async throws -> Operations.ListPrices.Output {
        let currency = input.query.currency.flatMap { Currency(rawValue: $0.rawValue) }
        let list = try await database.read { try await prices.listPlatform(currency: currency, on: $0) }
        return .ok(.init(body: .json(.init(data: list.map(Schemas.Price.init)))))
    }

    func setPrice(_ input: Operations.SetPrice.Input) async throws -> Operations.SetPrice.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        let model = try validModel(input.path.model)
        let price = try body.domain()
        let currency = Currency(rawValue: input.path.currency.rawValue)!
        let record = try await database.transaction { db in
            let record = try await prices.upsert(tenantID: nil, model: model, currency: currency, price: price, on: db)
            try await audit.record("price.set", target: "price", id: nil, tenantID: nil,
                                   diff: ["model": model, "currency": currency.rawValue, "price": jsonText(body)], on: db)
            return record
        }
        return .ok(.init(body: .json(.init(record))))
    }

    func deletePrice(_ input: Operations.DeletePrice.Input) async throws -> Operations.DeletePrice.Output {
        let model = try validModel(input.path.model)
        let currency = Currency(rawValue: input.path.currency.rawValue)!
        try await database.transaction { db in
            guard try await prices.delete(tenantID: nil, model: model, currency: currency, on: db) else {
                throw Problem.notFound("Price")
            }
            try await audit.record("price.delete", target: "price", id: nil, tenantID: nil,
                                   diff: ["model": model, "currency": currency.rawValue], on: db)
        }
        return .noContent(.init())
    }

    func listTenantPrices(_ input: Operations.ListTenantPrices.Input) async throws -> Operations.ListTenantPrices.Output {
        let list = try await database.read { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            return try await prices.listEffective(tenantID: tenant.id, currency: tenant.currency, on: db)
        }
        return .ok(.init(body: .json(.init(data: list.map(Schemas.Price.init)))))
    }

    func setTenantPrice(_ input: Operations.SetTenantPrice.Input) async throws -> Operations.SetTenantPrice.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        let model = try validModel(input.path.model)
        let price = try body.domain()
        let record = try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            let record = try await prices.upsert(tenantID: tenant.id, model: model, currency: tenant.currency, price: price, on: db)
            try await audit.record("price.override.set", target: "price", id: nil, tenantID: tenant.id,
                                   diff: ["model": model, "price": jsonText(body)], on: db)
            return record
        }
        return .ok(.init(body: .json(.init(record))))
    }

    func deleteTenantPrice(_ input: Operations.DeleteTenantPrice.Input) async throws -> Operations.DeleteTenantPrice.Output {
        let model = try validModel(input.path.model)
        try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            guard try await prices.delete(tenantID: tenant.id, model: model, currency: tenant.currency, on: db) else {
                throw Problem.notFound("Price override")
            }
            try await audit.record("price.override.delete", target: "price", id: nil, tenantID: tenant.id,
                                   diff: ["model": model], on: db)
        }
        return .noContent(.init())
    }

    private func validModel(_ model: String) throws -> String {
        guard (1...128).contains(model.count),
              model.range(of: "^[A-Za-z0-9._:/-]+$", options: .regularExpression) != nil else {
            throw Problem.field("model", "must be 1 to 128 letters, digits or . _ : / -")
        }
        return model
    }
}
