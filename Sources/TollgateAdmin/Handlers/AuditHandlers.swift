import Foundation
import OpenAPIRuntime
import TollgateAdminAPI
import TollgateStorage

extension AdminAPI {
    func listAudit(_ input: Operations.ListAudit.Input) async throws -> Operations.ListAudit.Output {
        let principal = try Principal.require()
        let limit = try pageLimit(input.query.limit)
        let cursor = try input.query.cursor.map { text -> SequenceCursor in
            guard let cursor = SequenceCursor(encoded: text) else { throw Problem.field("cursor", "is not a cursor this API returned") }
            return cursor
        }
        var tenantID = try input.query.tenantId.map { text -> UUID in
            guard let id = UUID(uuidString: text) else { throw Problem.field("tenantId", "is not a UUID") }
            return id
        }
        if principal.role != .platformAdmin {
            // A tenant token reads its own tenant's entries only; asking for another tenant's is "not found".
            if let requested = tenantID, requested != principal.tenantID { throw Problem.notFound("Tenant") }
            tenantID = principal.tenantID
        }
        let (entries, next) = try await database.read { db in
            try await auditLog.list(tenantID: tenantID, action: input.query.action, limit: limit, before: cursor, on: db)
        }
        let data = entries.map { e in
            Schemas.AuditEntry(
                id: String(e.id), tenantId: e.tenantID?.apiString, actorTokenId: e.actorTokenID?.apiString,
                actorRole: e.actorRole, action: e.action, targetType: e.targetType, targetId: e.targetID,
                diff: .init(additionalProperties: (try? JSONDecoder().decode(OpenAPIObjectContainer.self, from: Data(e.diffJSON.utf8)))
                    ?? OpenAPIObjectContainer()),
                createdAt: e.createdAt)
        }
        return .ok(.init(body: .json(.init(data: data, nextCursor: next?.encoded))))
    }
}
