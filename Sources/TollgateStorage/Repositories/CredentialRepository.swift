import Foundation
import Logging
import PostgresNIO
import TollgateDomain

/// A tenant's Mistral API key. `secretCiphertext` is an envelope under the tenant's data key;
/// the plaintext never reaches this module's callers except the data plane's forwarder.
public struct CredentialRecord: Sendable, Hashable {
    public var id: UUID
    public var tenantID: UUID
    public var name: String
    public var baseURL: String
    public var weight: Int
    public var status: CredentialStatus
    public var secretCiphertext: Data
    public var last4: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: UUID, tenantID: UUID, name: String, baseURL: String, weight: Int, status: CredentialStatus,
                secretCiphertext: Data, last4: String, createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.id = id; self.tenantID = tenantID; self.name = name; self.baseURL = baseURL; self.weight = weight
        self.status = status; self.secretCiphertext = secretCiphertext; self.last4 = last4
        self.createdAt = createdAt; self.updatedAt = updatedAt
    }
}

public struct CredentialRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    static let columns = """
        id, tenant_id, name, base_url, weight, status, secret_ciphertext, secret_last4, created_at, updated_at,
        (extract(epoch from created_at) * 1000000)::bigint
        """

    public func insert(_ c: CredentialRecord, on db: PostgresConnection) async throws -> CredentialRecord {
        do {
            let rows = try await db.query("""
                INSERT INTO credentials (id, tenant_id, name, base_url, weight, status, secret_ciphertext, secret_last4)
                VALUES (\(c.id), \(c.tenantID), \(c.name), \(c.baseURL), \(c.weight), \(c.status.rawValue),
                        \(c.secretCiphertext), \(c.last4))
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            return try await Self.decode(rows).first!.0
        } catch { throw error.classified() }
    }

    public func get(tenantID: UUID, id: UUID, on db: PostgresConnection) async throws -> CredentialRecord? {
        let rows = try await db.query(
            "SELECT \(unescaped: Self.columns) FROM credentials WHERE tenant_id = \(tenantID) AND id = \(id)", logger: logger)
        return try await Self.decode(rows).first?.0
    }

    public func list(tenantID: UUID, limit: Int, after cursor: PageCursor?, on db: PostgresConnection) async throws -> Page<CredentialRecord> {
        let rows = try await db.query("""
            SELECT \(unescaped: Self.columns) FROM credentials
            WHERE tenant_id = \(tenantID)
              AND (\(cursor == nil) OR (created_at, id) > ('epoch'::timestamptz + \(cursor?.createdAtMicros ?? 0) * interval '1 microsecond', \(cursor?.id ?? UUID.random())))
            ORDER BY created_at, id LIMIT \(limit + 1)
            """, logger: logger)
        return paginate(try await Self.decode(rows), limit: limit, id: \.id)
    }

    /// The ids among `ids` that are this tenant's credentials.
    public func existing(tenantID: UUID, ids: [UUID], on db: PostgresConnection) async throws -> Set<UUID> {
        let rows = try await db.query(
            "SELECT id FROM credentials WHERE tenant_id = \(tenantID) AND id = ANY(\(ids))", logger: logger)
        var result = Set<UUID>()
        for try await id in rows.decode(UUID.self) { result.insert(id) }
        return result
    }

    public func update(tenantID: UUID, id: UUID, name: String?, baseURL: String?, weight: Int?, status: CredentialStatus?,
                       on db: PostgresConnection) async throws -> CredentialRecord? {
        do {
            let rows = try await db.query("""
                UPDATE credentials SET name = coalesce(\(name), name), base_url = coalesce(\(baseURL), base_url),
                    weight = coalesce(\(weight), weight), status = coalesce(\(status?.rawValue), status), updated_at = now()
                WHERE tenant_id = \(tenantID) AND id = \(id) RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            return try await Self.decode(rows).first?.0
        } catch { throw error.classified() }
    }

    public func replaceSecret(tenantID: UUID, id: UUID, ciphertext: Data, last4: String,
                              on db: PostgresConnection) async throws -> CredentialRecord? {
        let rows = try await db.query("""
            UPDATE credentials SET secret_ciphertext = \(ciphertext), secret_last4 = \(last4), updated_at = now()
            WHERE tenant_id = \(tenantID) AND id = \(id) RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        return try await Self.decode(rows).first?.0
    }

    public func all(tenantID: UUID, on db: PostgresConnection) async throws -> [CredentialRecord] {
        let rows = try await db.query(
            "SELECT \(unescaped: Self.columns) FROM credentials WHERE tenant_id = \(tenantID) ORDER BY created_at, id", logger: logger)
        return try await Self.decode(rows).map(\.0)
    }

    static func decode(_ rows: PostgresRowSequence) async throws -> [(CredentialRecord, Int64)] {
        var result: [(CredentialRecord, Int64)] = []
        for try await row in rows.decode((UUID, UUID, String, String, Int, String, Data, String, Date, Date, Int64).self) {
            let (id, tenant, name, url, weight, status, cipher, last4, created, updated, micros) = row
            result.append((CredentialRecord(
                id: id, tenantID: tenant, name: name, baseURL: url, weight: weight,
                status: CredentialStatus(rawValue: status) ?? .disabled, secretCiphertext: cipher, last4: last4,
                createdAt: created, updatedAt: updated), micros))
        }
        return result
    }
}
