import Foundation
import PostgresNIO
import TollgateAdminAPI
import TollgateDomain
import TollgateStorage

extension AdminAPI {
    func createCredential(_ input: Operations.CreateCredential.Input) async throws -> Operations.CreateCredential.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        var validator = FieldValidator()
        validator.length(body.name, "name", max: 200)
        validator.range(body.weight, "weight", 0...1000)
        let baseURL = validateBaseURL(body.baseUrl ?? UpstreamURLPolicy.defaultBaseURL, &validator)
        validateSecret(body.secret, &validator)
        try validator.throwIfFailed()
        // The request hash must not be derivable from the secret in clear: hash a redacted copy.
        var fingerprint = body
        fingerprint.secret = hasher.hash(body.secret).map { String(format: "%02x", $0) }.joined()
        let created = try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            return try await idempotency.run(key: input.headers.idempotencyKey, operation: "createCredential",
                                             tenantID: tenant.id, request: fingerprint, containsSecret: false, on: db) {
                let id = UUID.random()
                let cipher = CredentialCipher(dataKey: try keyring.unwrapDataKey(tenant.wrappedDataKey, tenantID: tenant.id),
                                              tenantID: tenant.id)
                let record = try await credentials.insert(CredentialRecord(
                    id: id, tenantID: tenant.id, name: body.name, baseURL: baseURL!, weight: body.weight ?? 1, status: .active,
                    secretCiphertext: try cipher.encrypt(body.secret, credentialID: id), last4: String(body.secret.suffix(4))),
                    on: db)
                let api = Schemas.Credential(record)
                try await audit.record("credential.create", target: "credential", id: id, tenantID: tenant.id, diff: api, on: db)
                return api
            }
        }
        return .created(.init(body: .json(created)))
    }

    func listCredentials(_ input: Operations.ListCredentials.Input) async throws -> Operations.ListCredentials.Output {
        let limit = try pageLimit(input.query.limit)
        let cursor = try pageCursor(input.query.cursor)
        let page = try await database.read { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            return try await credentials.list(tenantID: tenant.id, limit: limit, after: cursor, on: db)
        }
        return .ok(.init(body: .json(.init(data: page.items.map(Schemas.Credential.init), nextCursor: page.next?.encoded))))
    }

    func getCredential(_ input: Operations.GetCredential.Input) async throws -> Operations.GetCredential.Output {
        let credential = try await database.read { db in
            try await existingCredential(tenantText: input.path.tenantId, input.path.credentialId, on: db)
        }
        return .ok(.init(body: .json(.init(credential))))
    }

    func updateCredential(_ input: Operations.UpdateCredential.Input) async throws -> Operations.UpdateCredential.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        var validator = FieldValidator()
        validator.length(body.name, "name", max: 200)
        validator.range(body.weight, "weight", 0...1000)
        let baseURL = body.baseUrl.flatMap { validateBaseURL($0, &validator) }
        try validator.throwIfFailed()
        let updated = try await database.transaction { db in
            let credential = try await existingCredential(tenantText: input.path.tenantId, input.path.credentialId, on: db)
            guard let updated = try await credentials.update(
                tenantID: credential.tenantID, id: credential.id, name: body.name, baseURL: baseURL, weight: body.weight,
                status: body.status.flatMap { CredentialStatus(rawValue: $0.rawValue) }, on: db)
            else { throw Problem.notFound("Credential") }
            try await audit.record("credential.update", target: "credential", id: credential.id,
                                   tenantID: credential.tenantID, diff: body, on: db)
            return updated
        }
        return .ok(.init(body: .json(.init(updated))))
    }

    func rotateCredential(_ input: Operations.RotateCredential.Input) async throws -> Operations.RotateCredential.Output {
        guard case .json(let body) = input.body else { throw Problem.badRequest("Expected a JSON body") }
        var validator = FieldValidator()
        validateSecret(body.secret, &validator)
        try validator.throwIfFailed()
        let updated = try await database.transaction { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            let credential = try await existingCredential(tenantText: input.path.tenantId, input.path.credentialId, on: db)
            let cipher = CredentialCipher(dataKey: try keyring.unwrapDataKey(tenant.wrappedDataKey, tenantID: tenant.id),
                                          tenantID: tenant.id)
            guard let updated = try await credentials.replaceSecret(
                tenantID: tenant.id, id: credential.id, ciphertext: try cipher.encrypt(body.secret, credentialID: credential.id),
                last4: String(body.secret.suffix(4)), on: db)
            else { throw Problem.notFound("Credential") }
            try await audit.record("credential.rotate", target: "credential", id: credential.id, tenantID: tenant.id,
                                   diff: ["last4": updated.last4], on: db)
            return updated
        }
        return .ok(.init(body: .json(.init(updated))))
    }

    func existingCredential(tenantText: String, _ text: String, on db: PostgresConnection) async throws -> CredentialRecord {
        let tenantID = try parseID(tenantText, "Tenant")
        let id = try parseID(text, "Credential")
        guard let credential = try await credentials.get(tenantID: tenantID, id: id, on: db) else {
            throw Problem.notFound("Credential")
        }
        return credential
    }

    private func validateBaseURL(_ text: String, _ validator: inout FieldValidator) -> String? {
        switch upstreamPolicy.validate(text) {
        case .success(let url): return url
        case .failure(let error): validator.fail("baseUrl", error.description); return nil
        }
    }

    private func validateSecret(_ secret: String, _ validator: inout FieldValidator) {
        validator.check((8...500).contains(secret.count), "secret", "must be 8 to 500 characters long")
        validator.check(!secret.contains(where: { $0.isWhitespace || $0.isNewline }), "secret",
                        "must not contain spaces or line breaks")
    }
}
