import Foundation
import OpenAPIRuntime
import TollgateAdminAPI
import TollgateDomain
import TollgateStorage

// Mapping between storage records and the generated API types. Secrets never cross here:
// no record carries a plaintext, and hashes and ciphertexts are not mapped.

typealias Schemas = Components.Schemas

extension Schemas.Budget {
    init(_ budget: Budget) {
        self.init(amount: budget.limit.decimalString, period: .init(rawValue: budget.period.rawValue)!)
    }

    func domain(field: String) throws -> Budget {
        let limit: Money
        do { limit = try Money(decimal: amount) } catch { throw Problem.field("\(field).amount", error.description) }
        return Budget(limit: limit, period: BudgetPeriod(rawValue: period.rawValue)!)
    }
}

extension Schemas.Limits {
    init(_ limits: RateLimits) {
        self.init(requestsPerMinute: limits.requestsPerMinute, tokensPerMinute: limits.tokensPerMinute,
                  maxConcurrent: limits.maxConcurrent)
    }

    func domain(field: String) throws -> RateLimits {
        var validator = FieldValidator()
        validator.range(requestsPerMinute, "\(field).requestsPerMinute", 1...10_000_000)
        validator.range(tokensPerMinute, "\(field).tokensPerMinute", 1...2_000_000_000)
        validator.range(maxConcurrent, "\(field).maxConcurrent", 1...100_000)
        try validator.throwIfFailed()
        return RateLimits(requestsPerMinute: requestsPerMinute, tokensPerMinute: tokensPerMinute, maxConcurrent: maxConcurrent)
    }
}

extension Schemas.Tenant {
    init(_ t: TenantRecord) {
        self.init(id: t.id.apiString, slug: t.slug, name: t.name, status: .init(rawValue: t.status.rawValue)!,
                  currency: .init(rawValue: t.currency.rawValue)!, budget: t.budget.map(Schemas.Budget.init),
                  limits: .init(t.limits), createdAt: t.createdAt, updatedAt: t.updatedAt)
    }
}

extension Schemas.AdminToken {
    init(_ t: AdminTokenRecord) {
        self.init(id: t.id.apiString, role: .init(rawValue: t.role.rawValue)!, tenantId: t.tenantID?.apiString,
                  name: t.name, displayPrefix: t.displayPrefix, expiresAt: t.expiresAt, lastUsedAt: t.lastUsedAt,
                  revokedAt: t.revokedAt, createdAt: t.createdAt)
    }
}

extension Schemas.Credential {
    init(_ c: CredentialRecord) {
        self.init(id: c.id.apiString, name: c.name, baseUrl: c.baseURL, weight: c.weight,
                  status: .init(rawValue: c.status.rawValue)!, last4: c.last4, createdAt: c.createdAt, updatedAt: c.updatedAt)
    }
}

extension Schemas.Key {
    init(_ k: VirtualKeyRecord, now: Date) {
        let metadata = (try? JSONDecoder().decode(OpenAPIObjectContainer.self, from: Data(k.metadataJSON.utf8)))
            ?? OpenAPIObjectContainer()
        self.init(id: k.id.apiString, name: k.name, status: .init(rawValue: k.status(at: now).rawValue)!,
                  displayPrefix: k.displayPrefix, expiresAt: k.expiresAt, models: k.allowedModels,
                  endpoints: k.allowedEndpoints.compactMap(Schemas.EndpointFamily.init(rawValue:)),
                  credentialIds: k.credentialIDs.map(\.apiString), metadata: .init(additionalProperties: metadata),
                  budget: k.budget.map(Schemas.Budget.init), limits: .init(k.limits), defaultMaxTokens: k.defaultMaxTokens,
                  previousSecretValidUntil: k.previousSecretValidUntil, revokedAt: k.revokedAt,
                  createdAt: k.createdAt, updatedAt: k.updatedAt)
    }
}

extension Schemas.Price {
    init(_ p: PriceRecord) {
        self.init(model: p.model, currency: .init(rawValue: p.currency.rawValue)!,
                  inputPerMillion: p.price.inputPerMillion.decimalString,
                  outputPerMillion: p.price.outputPerMillion.decimalString,
                  cachedInputPerMillion: p.price.cachedInputPerMillion.decimalString,
                  perPage: p.price.perPage?.decimalString, scope: p.tenantID == nil ? .platform : .tenant)
    }
}

extension Schemas.PriceSet {
    func domain() throws -> Price {
        var validator = FieldValidator()
        func parse(_ text: String?, _ field: String) -> Money? {
            guard let text else { return nil }
            do { return try Money(decimal: text) } catch { validator.fail(field, error.description); return nil }
        }
        let input = parse(inputPerMillion, "inputPerMillion")
        let output = parse(outputPerMillion, "outputPerMillion")
        let cached = parse(cachedInputPerMillion, "cachedInputPerMillion")
        let page = parse(perPage, "perPage")
        try validator.throwIfFailed()
        return Price(inputPerMillion: input!, outputPerMillion: output!, cachedInputPerMillion: cached, perPage: page)
    }
}

/// Parses an id from a path; an id that is not a UUID cannot exist, so it is "not found".
func parseID(_ text: String, _ what: String) throws -> UUID {
    guard let id = UUID(uuidString: text) else { throw Problem.notFound(what) }
    return id
}

func pageLimit(_ limit: Int?) throws -> Int {
    let value = limit ?? 50
    guard (1...200).contains(value) else { throw Problem.field("limit", "must be between 1 and 200") }
    return value
}

func pageCursor(_ text: String?) throws -> PageCursor? {
    guard let text else { return nil }
    guard let cursor = PageCursor(encoded: text) else { throw Problem.field("cursor", "is not a cursor this API returned") }
    return cursor
}

/// JSON object text for the audit log and stored metadata.
func jsonText(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    return (try? encoder.encode(value)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
}
