import Foundation
import OpenAPIRuntime
import TollgateAdminAPI
import TollgateDomain
import TollgateStorage

extension AdminAPI {
    /// Longest range one report may cover, so a request cannot scan years of ledger.
    static let maxUsageRange: TimeInterval = 366 * 24 * 3600

    func getUsage(_ input: Operations.GetUsage.Input) async throws -> Operations.GetUsage.Output {
        let (from, to) = try usageRange(input.query.from, input.query.to)
        let keyID = try input.query.keyId.map { text -> UUID in
            guard let id = UUID(uuidString: text) else { throw Problem.field("keyId", "is not a UUID") }
            return id
        }
        let grouping = UsageGrouping(rawValue: input.query.groupBy.rawValue)!
        let (tenant, rows) = try await database.read { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            return (tenant, try await usage.aggregate(tenantID: tenant.id, from: from, to: to, groupBy: grouping, keyID: keyID, on: db))
        }
        func row(_ a: UsageAggregate) -> Schemas.UsageRow {
            .init(group: a.group, requests: a.requests, promptTokens: a.promptTokens, completionTokens: a.completionTokens,
                  cachedTokens: a.cachedTokens, cost: a.cost.decimalString, estimatedRequests: a.estimatedRequests)
        }
        let total = rows.reduce(UsageAggregate(group: "total", requests: 0, promptTokens: 0, completionTokens: 0,
                                               cachedTokens: 0, cost: .zero, estimatedRequests: 0)) { sum, a in
            UsageAggregate(group: "total", requests: sum.requests + a.requests, promptTokens: sum.promptTokens + a.promptTokens,
                           completionTokens: sum.completionTokens + a.completionTokens,
                           cachedTokens: sum.cachedTokens + a.cachedTokens, cost: Money(nanos: sum.cost.nanos + a.cost.nanos),
                           estimatedRequests: sum.estimatedRequests + a.estimatedRequests)
        }
        return .ok(.init(body: .json(.init(
            from: from, to: to, groupBy: input.query.groupBy, currency: .init(rawValue: tenant.currency.rawValue)!,
            rows: rows.map(row), total: row(total)))))
    }

    func exportUsage(_ input: Operations.ExportUsage.Input) async throws -> Operations.ExportUsage.Output {
        let (from, to) = try usageRange(input.query.from, input.query.to)
        var csv = "request_id,started_at,key_id,credential_id,endpoint,model,prompt_tokens,completion_tokens,cached_tokens,pages,cost,currency,status_code,estimated\n"
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        try await database.read { db in
            let tenant = try await existingTenant(input.path.tenantId, on: db)
            try await usage.export(tenantID: tenant.id, from: from, to: to, on: db) { r in
                let fields: [String] = [
                    r.requestID.apiString, formatter.string(from: r.startedAt), r.keyID.apiString,
                    r.credentialID?.apiString ?? "", r.endpoint, r.model ?? "", "\(r.usage.promptTokens)",
                    "\(r.usage.completionTokens)", "\(r.usage.cachedTokens)", "\(r.usage.pages)", r.cost.decimalString,
                    r.currency.rawValue, "\(r.statusCode)", r.estimated ? "true" : "false",
                ]
                csv += fields.map(Self.csvField).joined(separator: ",") + "\n"
            }
        }
        return .ok(.init(body: .csv(HTTPBody(csv))))
    }

    private func usageRange(_ from: Date, _ to: Date) throws -> (Date, Date) {
        guard from < to else { throw Problem.field("to", "must be after from") }
        guard to.timeIntervalSince(from) <= Self.maxUsageRange else {
            throw Problem.field("to", "the range may cover at most 366 days")
        }
        return (from, to)
    }

    /// RFC 4180 quoting; a leading =, +, - or @ is prefixed with ' so spreadsheets do not run it.
    static func csvField(_ value: String) -> String {
        var text = value
        if let first = text.first, "=+-@".contains(first), Double(text) == nil { text = "'" + text }
        if text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return text
    }
}
