import Foundation
import OpenAPIRuntime
import PostgresNIO
import TollgateAdminAPI
import TollgateDomain
import TollgateStorage

extension AdminAPI {
    static let maxMetadataBytes = 16 * 1024

    func createKey(_ input: Operations.CreateKey.Input) async throws -> Operations.CreateKey.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        var validator = FieldValidator()
        validator.length(body.name, "name", max: 200)
        if let expiresAt = body.expiresAt { validator.check(expiresAt > now(), "expiresAt", "must be in the future") }
        validateModels(body.models, &validator)
        validator.check((body.endpoints?.count ?? 0) <= 20, "endpoints", "at most 20 entries")
        validator.range(body.defaultMaxTokens, "defaultMaxTokens", 1...10_000_000)
        let metadata = validateMetadata(body.metadata?.additionalProperties, &validator)
        let credentialIDs = validateCredentialIDs(body.credentialIds, &validator)
        try validator.throwIfFailed()
        let budget = try body.budget?.domain(field: "budget")
        let limits = try body.limits?.domain(field: "limits") ?? RateLimits()
        let now = self.now()
        let created = try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            try await requireCredentials(credentialIDs ?? [], tenant: tenant, on: db)
            return try await idempotency.run(key: input.headers.idempotencyKey, operation: "createKey", tenantID: tenant.id,
                                             request: body, containsSecret: true, on: db) {
                let secret = SecretToken.generate(.virtualKey)
                let record = try await keys.insert(VirtualKeyRecord(
                    id: UUID.random(), tenantID: tenant.id, name: body.name, displayPrefix: secret.displayPrefix,
                    expiresAt: body.expiresAt, allowedModels: body.models ?? [],
                    allowedEndpoints: (body.endpoints ?? []).map(\.rawValue), credentialIDs: credentialIDs ?? [],
                    metadataJSON: metadata ?? "{}", budget: budget, limits: limits, defaultMaxTokens: body.defaultMaxTokens),
                    secretHash: hasher.hash(secret.value), on: db)
                if let budget {
                    try await budgets.applyLimit(tenantID: tenant.id, ownerID: record.id, ownerKind: "key", budget: budget, at: now, on: db)
                }
                let api = Schemas.Key(record, now: now)
                try await audit.record("key.create", target: "key", id: record.id, tenantID: tenant.id, diff: api, on: db)
                return Schemas.KeyCreated(key: api, secret: secret.value)
            }
        }
        return .created(.init(body: .json(created)))
    }

    func listKeys(_ input: Operations.ListKeys.Input) async throws -> Operations.ListKeys.Output {
        let limit = try pageLimit(input.query.limit)
        let cursor = try pageCursor(input.query.cursor)
        if let name = input.query.name, name.count > 200 { throw Problem.field("name", "at most 200 characters") }
        let now = self.now()
        let page = try await database.read { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            return try await keys.list(tenantID: tenant.id, status: input.query.status.flatMap { KeyStatus(rawValue: $0.rawValue) },
                                       namePrefix: input.query.name, limit: limit, after: cursor, on: db)
        }
        return .ok(.init(body: .json(.init(data: page.items.map { Schemas.Key($0, now: now) }, nextCursor: page.next?.encoded))))
    }

    func getKey(_ input: Operations.GetKey.Input) async throws -> Operations.GetKey.Output {
        let key = try await database.read { db in
            try await existingKey(tenant: try await existingTenant(input.path.tenantId, on: db), input.path.keyId, on: db)
        }
        return .ok(.init(body: .json(.init(key, now: now()))))
    }

    func updateKey(_ input: Operations.UpdateKey.Input) async throws -> Operations.UpdateKey.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        var validator = FieldValidator()
        validator.length(body.name, "name", max: 200)
        if let expiresAt = body.expiresAt { validator.check(expiresAt > now(), "expiresAt", "must be in the future") }
        validateModels(body.models, &validator)
        validator.check((body.endpoints?.count ?? 0) <= 20, "endpoints", "at most 20 entries")
        validator.range(body.defaultMaxTokens, "defaultMaxTokens", 1...10_000_000)
        let metadata = validateMetadata(body.metadata?.additionalProperties, &validator)
        let credentialIDs = validateCredentialIDs(body.credentialIds, &validator)
        try validator.throwIfFailed()
        var changes = VirtualKeyChanges()
        changes.name = body.name
        changes.expiresAt = body.expiresAt
        changes.allowedModels = body.models
        changes.allowedEndpoints = body.endpoints?.map(\.rawValue)
        changes.credentialIDs = credentialIDs
        changes.metadataJSON = metadata
        changes.defaultMaxTokens = body.defaultMaxTokens
        let updated = try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            let key = try await existingKey(tenant: tenant, input.path.keyId, on: db, forUpdate: true)
            try await requireCredentials(credentialIDs ?? [], tenant: tenant, on: db)
            guard let updated = try await keys.update(tenantID: tenant.id, id: key.id, changes, on: db) else {
                throw Problem.notFound("Key")
            }
            try await audit.record("key.update", target: "key", id: key.id, tenantID: tenant.id, diff: body, on: db)
            return updated
        }
        return .ok(.init(body: .json(.init(updated, now: now()))))
    }

    func rotateKey(_ input: Operations.RotateKey.Input) async throws -> Operations.RotateKey.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        let grace = body.gracePeriodSeconds ?? 3600
        guard (0...2_592_000).contains(grace) else {
            throw Problem.field("gracePeriodSeconds", "must be between 0 and 2592000 (30 days)")
        }
        let now = self.now()
        let rotated = try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            let key = try await existingKey(tenant: tenant, input.path.keyId, on: db, forUpdate: true)
            guard key.status(at: now) == .active else {
                throw Problem.conflict("Only an active key can be rotated; this key is \(key.status(at: now).rawValue)")
            }
            let secret = SecretToken.generate(.virtualKey)
            guard let updated = try await keys.rotate(tenantID: tenant.id, id: key.id, newHash: hasher.hash(secret.value),
                                                      displayPrefix: secret.displayPrefix, graceSeconds: grace, on: db)
            else { throw Problem.notFound("Key") }
            try await audit.record("key.rotate", target: "key", id: key.id, tenantID: tenant.id,
                                   diff: ["gracePeriodSeconds": grace], on: db)
            return Schemas.KeyCreated(key: .init(updated, now: now), secret: secret.value)
        }
        return .ok(.init(body: .json(rotated)))
    }

    func revokeKey(_ input: Operations.RevokeKey.Input) async throws -> Operations.RevokeKey.Output {
        let revoked = try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            let key = try await existingKey(tenant: tenant, input.path.keyId, on: db, forUpdate: true)
            guard let revoked = try await keys.revoke(tenantID: tenant.id, id: key.id, on: db) else {
                throw Problem.notFound("Key")
            }
            try await audit.record("key.revoke", target: "key", id: key.id, tenantID: tenant.id,
                                   diff: ["revokedAt": revoked.revokedAt], on: db)
            return revoked
        }
        return .ok(.init(body: .json(.init(revoked, now: now()))))
    }

    func existingKey(tenant: TenantRecord, _ text: String, on db: PostgresConnection, forUpdate: Bool = false) async throws -> VirtualKeyRecord {
        let id = try parseID(text, "Key")
        guard let key = try await keys.get(tenantID: tenant.id, id: id, on: db, forUpdate: forUpdate) else {
            throw Problem.notFound("Key")
        }
        return key
    }

    private func validateModels(_ models: [String]?, _ validator: inout FieldValidator) {
        guard let models else { return }
        validator.check(models.count <= 100, "models", "at most 100 entries")
        for (index, model) in models.enumerated() {
            do { _ = try ModelPattern(model) } catch { validator.fail("models.\(index)", error.description) }
        }
    }

    private func validateMetadata(_ metadata: OpenAPIObjectContainer?, _ validator: inout FieldValidator) -> String? {
        guard let metadata else { return nil }
        let text = jsonText(metadata)
        validator.check(text.utf8.count <= Self.maxMetadataBytes, "metadata", "must be at most \(Self.maxMetadataBytes) bytes of JSON")
        return text
    }

    private func validateCredentialIDs(_ ids: [String]?, _ validator: inout FieldValidator) -> [UUID]? {
        guard let ids else { return nil }
        validator.check(ids.count <= 50, "credentialIds", "at most 50 entries")
        var result: [UUID] = []
        for (index, text) in ids.enumerated() {
            if let id = UUID(uuidString: text) { result.append(id) } else { validator.fail("credentialIds.\(index)", "is not a UUID") }
        }
        return result
    }

    /// Every credential id must be the tenant's own; another tenant's id reads as unknown.
    private func requireCredentials(_ ids: [UUID], tenant: TenantRecord, on db: PostgresConnection) async throws {
        guard !ids.isEmpty else { return }
        let known = try await credentials.existing(tenantID: tenant.id, ids: ids, on: db)
        let errors = ids.enumerated().filter { !known.contains($0.element) }
            .map { Problem.FieldError(field: "credentialIds.\($0.offset)", message: "no such credential in this tenant") }
        if !errors.isEmpty { throw Problem.validation(errors) }
    }
}
