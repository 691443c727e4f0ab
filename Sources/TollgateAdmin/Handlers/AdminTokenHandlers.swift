import Foundation
import PostgresNIO
import TollgateAdminAPI
import TollgateDomain
import TollgateStorage

extension AdminAPI {
    func whoami(_ input: Operations.Whoami.Input) async throws -> Operations.Whoami.Output {
        let principal = try Principal.require()
        guard let token = try await database.read({ try await tokens.get(principal.tokenID, on: $0) }) else {
            throw Problem.unauthenticated
        }
        return .ok(.init(body: .json(.init(token))))
    }

    func createPlatformToken(_ input: Operations.CreatePlatformToken.Input) async throws -> Operations.CreatePlatformToken.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        let created = try await mintToken(name: body.name, role: .platformAdmin, tenantID: nil, expiresAt: body.expiresAt,
                                          idempotencyKey: input.headers.idempotencyKey, operation: "createPlatformToken", request: body)
        return .created(.init(body: .json(created)))
    }

    func createTenantToken(_ input: Operations.CreateTenantToken.Input) async throws -> Operations.CreateTenantToken.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        let tenantID = try parseID(input.path.tenantId, "Tenant")
        let created = try await mintToken(name: body.name, role: AdminRole(rawValue: body.role.rawValue)!, tenantID: tenantID,
                                          expiresAt: body.expiresAt, idempotencyKey: input.headers.idempotencyKey,
                                          operation: "createTenantToken", request: body)
        return .created(.init(body: .json(created)))
    }

    private func mintToken(name: String, role: AdminRole, tenantID: UUID?, expiresAt: Date?, idempotencyKey: String?,
                           operation: String, request: some Encodable & Sendable) async throws -> Schemas.AdminTokenCreated {
        var validator = FieldValidator()
        validator.length(name, "name", max: 200)
        if let expiresAt { validator.check(expiresAt > now(), "expiresAt", "must be in the future") }
        try validator.throwIfFailed()
        let principal = try Principal.require()
        return try await database.transaction { db in
            if let tenantID { _ = try await existingTenant(tenantID.apiString, on: db) }
            return try await idempotency.run(key: idempotencyKey, operation: operation, tenantID: tenantID, request: request,
                                             containsSecret: true, on: db) {
                let secret = SecretToken.generate(.adminToken)
                let record = try await tokens.insert(AdminTokenRecord(
                    id: UUID.random(), tenantID: tenantID, role: role, name: name, displayPrefix: secret.displayPrefix,
                    expiresAt: expiresAt, createdBy: principal.tokenID), hash: hasher.hash(secret.value), on: db)
                let api = Schemas.AdminToken(record)
                try await audit.record("admin_token.create", target: "admin_token", id: record.id, tenantID: tenantID, diff: api, on: db)
                return Schemas.AdminTokenCreated(adminToken: api, token: secret.value)
            }
        }
    }

    func listPlatformTokens(_ input: Operations.ListPlatformTokens.Input) async throws -> Operations.ListPlatformTokens.Output {
        let limit = try pageLimit(input.query.limit)
        let cursor = try pageCursor(input.query.cursor)
        let page = try await database.read { try await tokens.list(tenantID: nil, limit: limit, after: cursor, on: $0) }
        return .ok(.init(body: .json(.init(data: page.items.map(Schemas.AdminToken.init), nextCursor: page.next?.encoded))))
    }

    func listTenantTokens(_ input: Operations.ListTenantTokens.Input) async throws -> Operations.ListTenantTokens.Output {
        let limit = try pageLimit(input.query.limit)
        let cursor = try pageCursor(input.query.cursor)
        let page = try await database.read { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            return try await tokens.list(tenantID: tenant.id, limit: limit, after: cursor, on: db)
        }
        return .ok(.init(body: .json(.init(data: page.items.map(Schemas.AdminToken.init), nextCursor: page.next?.encoded))))
    }

    func getAdminToken(_ input: Operations.GetAdminToken.Input) async throws -> Operations.GetAdminToken.Output {
        let token = try await database.read { try await visibleToken(input.path.tokenId, on: $0) }
        return .ok(.init(body: .json(.init(token))))
    }

    func revokeAdminToken(_ input: Operations.RevokeAdminToken.Input) async throws -> Operations.RevokeAdminToken.Output {
        let revoked = try await database.transaction { db in
            let token = try await visibleToken(input.path.tokenId, on: db)
            guard let revoked = try await tokens.revoke(token.id, on: db) else { throw Problem.notFound("Admin token") }
            try await audit.record("admin_token.revoke", target: "admin_token", id: token.id, tenantID: token.tenantID,
                                   diff: ["revokedAt": revoked.revokedAt], on: db)
            return revoked
        }
        return .ok(.init(body: .json(.init(revoked))))
    }

    /// A token the caller may see: platform admins see all, tenant tokens their tenant's only.
    private func visibleToken(_ text: String, on db: PostgresConnection) async throws -> AdminTokenRecord {
        let principal = try Principal.require()
        let id = try parseID(text, "Admin token")
        guard let token = try await tokens.get(id, on: db),
              principal.role == .platformAdmin || (token.tenantID != nil && token.tenantID == principal.tenantID)
        else { throw Problem.notFound("Admin token") }
        return token
    }
}
