import Foundation
import Logging
import PostgresNIO

/// The first response to a create carrying an `Idempotency-Key`, kept for replays.
public struct StoredResponse: Sendable, Hashable {
    public var operation: String
    public var requestHash: Data
    public var status: Int
    public var body: Data
    /// Whether `body` is sealed (it carries a one-time secret such as a minted key).
    public var sealed: Bool

    public init(operation: String, requestHash: Data, status: Int, body: Data, sealed: Bool) {
        self.operation = operation; self.requestHash = requestHash; self.status = status
        self.body = body; self.sealed = sealed
    }
}

public struct IdempotencyRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    /// Serialises concurrent requests with the same token and key: the second waits for the first's
    /// transaction, then sees its stored response.
    public func lock(tokenID: UUID, key: String, on db: PostgresConnection) async throws {
        try await db.query("SELECT pg_advisory_xact_lock(hashtextextended(\(tokenID.uuidString + "|" + key), 0))", logger: logger)
    }

    public func find(tokenID: UUID, key: String, on db: PostgresConnection) async throws -> StoredResponse? {
        let rows = try await db.query("""
            SELECT operation, request_hash, response_status, response_body, response_sealed FROM idempotency_keys
            WHERE token_id = \(tokenID) AND idempotency_key = \(key) AND created_at > now() - interval '24 hours'
            """, logger: logger)
        for try await (operation, hash, status, body, sealed) in rows.decode((String, Data, Int, Data, Bool).self) {
            return StoredResponse(operation: operation, requestHash: hash, status: status, body: body, sealed: sealed)
        }
        return nil
    }

    public func store(tokenID: UUID, key: String, tenantID: UUID?, response: StoredResponse, on db: PostgresConnection) async throws {
        try await db.query("""
            INSERT INTO idempotency_keys (token_id, idempotency_key, operation, request_hash, tenant_id, response_status,
                response_body, response_sealed)
            VALUES (\(tokenID), \(key), \(response.operation), \(response.requestHash), \(tenantID), \(response.status),
                \(response.body), \(response.sealed))
            ON CONFLICT (token_id, idempotency_key) DO UPDATE SET operation = excluded.operation,
                request_hash = excluded.request_hash, tenant_id = excluded.tenant_id,
                response_status = excluded.response_status, response_body = excluded.response_body,
                response_sealed = excluded.response_sealed, created_at = now()
            """, logger: logger)
    }
}
