import Foundation
import PostgresNIO
import TollgateStorage

/// Writes the audit row of an admin mutation inside the mutation's transaction, so a change is
/// never committed without its record. Callers pass diffs built from API types that never carry
/// secrets; `redacted` removes any secret-looking field as a second line of defence.
struct AuditTrail: Sendable {
    let repository: AuditRepository

    func record(_ action: String, target: String, id: UUID?, tenantID: UUID?, diff: some Encodable,
                on db: PostgresConnection) async throws {
        let principal = Principal.current
        try await repository.append(AuditEntry(
            tenantID: tenantID, actorTokenID: principal?.tokenID, actorRole: principal?.role.rawValue, action: action,
            targetType: target, targetID: id?.apiString, diffJSON: Self.redacted(jsonText(diff)),
            requestID: RequestIdentity.current), on: db)
    }

    static let secretFields: Set<String> = ["secret", "token", "apiKey", "api_key", "password"]

    static func redacted(_ json: String) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) else { return "{}" }
        let cleaned = scrub(object)
        guard let data = try? JSONSerialization.data(withJSONObject: cleaned, options: [.sortedKeys]) else { return "{}" }
        return String(data: data, encoding: .utf8) ?? "{}"
    }

    private static func scrub(_ value: Any) -> Any {
        if let dict = value as? [String: Any] {
            var result: [String: Any] = [:]
            for (key, inner) in dict { result[key] = secretFields.contains(key) ? "[redacted]" : scrub(inner) }
            return result
        }
        if let array = value as? [Any] { return array.map(scrub) }
        return value
    }
}
