import Foundation
import Logging
import PostgresNIO

public struct AuditEntry: Sendable, Hashable {
    public var id: Int64
    public var tenantID: UUID?
    public var actorTokenID: UUID?
    public var actorRole: String?
    public var action: String
    public var targetType: String
    public var targetID: String?
    /// JSON object text; callers must have removed secrets.
    public var diffJSON: String
    public var requestID: String?
    public var createdAt: Date

    public init(id: Int64 = 0, tenantID: UUID?, actorTokenID: UUID?, actorRole: String?, action: String,
                targetType: String, targetID: String?, diffJSON: String, requestID: String?, createdAt: Date = Date()) {
        self.id = id; self.tenantID = tenantID; self.actorTokenID = actorTokenID; self.actorRole = actorRole
        self.action = action; self.targetType = targetType; self.targetID = targetID; self.diffJSON = diffJSON
        self.requestID = requestID; self.createdAt = createdAt
    }
}

public struct AuditRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    public func append(_ entry: AuditEntry, on db: PostgresConnection) async throws {
        try await db.query("""
            INSERT INTO audit_log (tenant_id, actor_token_id, actor_role, action, target_type, target_id, diff, request_id)
            VALUES (\(entry.tenantID), \(entry.actorTokenID), \(entry.actorRole), \(entry.action), \(entry.targetType),
                    \(entry.targetID), \(entry.diffJSON)::jsonb, \(entry.requestID))
            """, logger: logger)
    }

    /// Newest first. `tenantID` nil lists every tenant's entries (platform admins only).
    public func list(tenantID: UUID?, action: String?, limit: Int, before cursor: SequenceCursor?,
                     on db: PostgresConnection) async throws -> (entries: [AuditEntry], next: SequenceCursor?) {
        let rows = try await db.query("""
            SELECT id, tenant_id, actor_token_id, actor_role, action, target_type, target_id, diff::text, request_id, created_at
            FROM audit_log
            WHERE (\(tenantID)::uuid IS NULL OR tenant_id = \(tenantID))
              AND (\(action)::text IS NULL OR action = \(action))
              AND id < \(cursor?.beforeID ?? Int64.max)
            ORDER BY id DESC LIMIT \(limit + 1)
            """, logger: logger)
        var entries: [AuditEntry] = []
        for try await (id, tenant, actor, role, action, type, target, diff, request, created) in
            rows.decode((Int64, UUID?, UUID?, String?, String, String, String?, String, String?, Date).self) {
            entries.append(AuditEntry(id: id, tenantID: tenant, actorTokenID: actor, actorRole: role, action: action,
                                      targetType: type, targetID: target, diffJSON: diff, requestID: request, createdAt: created))
        }
        let page = Array(entries.prefix(limit))
        return (page, entries.count > limit ? page.last.map { SequenceCursor(beforeID: $0.id) } : nil)
    }
}
