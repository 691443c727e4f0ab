import Crypto
import Foundation
import PostgresNIO
import TollgateDomain
import TollgateStorage

/// `Idempotency-Key` for creates: the same key and the same request replays the first response;
/// the same key with another request is refused with 422. Keys are scoped to the calling token and
/// kept 24 hours. A response that carries a one-time secret is stored sealed under the master key,
/// never in clear.
struct Idempotency: Sendable {
    let repository: IdempotencyRepository
    let keyring: MasterKeyring

    /// Runs `create` in `db`'s transaction unless `key` was already used, in which case the stored
    /// result is returned instead.
    func run<Result: Codable & Sendable>(
        key: String?, operation: String, tenantID: UUID?, request: some Encodable, containsSecret: Bool,
        on db: PostgresConnection, create: () async throws -> Result
    ) async throws -> Result {
        guard let key else { return try await create() }
        guard !key.isEmpty, key.count <= 200 else {
            throw Problem.field("Idempotency-Key", "must be 1 to 200 characters long")
        }
        let principal = try Principal.require()
        let hash = Data(SHA256.hash(data: Data((operation + "\n" + (tenantID?.apiString ?? "") + "\n" + jsonText(request)).utf8)))
        try await repository.lock(tokenID: principal.tokenID, key: key, on: db)
        if let stored = try await repository.find(tokenID: principal.tokenID, key: key, on: db) {
            guard stored.operation == operation, stored.requestHash == hash else { throw Problem.idempotencyMismatch() }
            let body = stored.sealed ? try keyring.open(stored.body, context: context(principal, tenantID)) : stored.body
            return try JSONDecoder.api.decode(Result.self, from: body)
        }
        let result = try await create()
        let plain = try JSONEncoder.api.encode(result)
        let body = containsSecret ? try keyring.seal(plain, context: context(principal, tenantID)) : plain
        try await repository.store(tokenID: principal.tokenID, key: key, tenantID: tenantID, response: StoredResponse(
            operation: operation, requestHash: hash, status: 201, body: body, sealed: containsSecret), on: db)
        return result
    }

    private func context(_ principal: Principal, _ tenantID: UUID?) -> EncryptionContext {
        EncryptionContext(purpose: .idempotentResponse, tenantID: tenantID ?? UUID(uuid: UUID_NULL_BYTES),
                          recordID: principal.tokenID)
    }
}

private let UUID_NULL_BYTES: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

extension JSONEncoder {
    static let api: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.timeIntervalSince1970)
        }
        return encoder
    }()
}

extension JSONDecoder {
    static let api: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            Date(timeIntervalSince1970: try decoder.singleValueContainer().decode(Double.self))
        }
        return decoder
    }()
}
