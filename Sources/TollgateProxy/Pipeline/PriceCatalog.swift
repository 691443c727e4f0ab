import Foundation
import TollgateDomain
import TollgateStorage

/// Prices in force per tenant and model, cached briefly (prices change rarely; a change reaches
/// every replica within the TTL).
final class PriceCatalog: Sendable {
    private struct Entry { var price: Price?; var expires: ContinuousClock.Instant }
    /// `model` nil: the tenant's ceiling price.
    private struct CacheKey: Hashable { let tenantID: UUID; let currency: String; let model: String? }
    private let entries = Locked([CacheKey: Entry]())
    private let database: Database
    private let directory: KeyDirectory
    private let ttl: Duration

    init(database: Database, directory: KeyDirectory, ttl: Duration = .seconds(30)) {
        self.database = database
        self.directory = directory
        self.ttl = ttl
    }

    func price(for key: ResolvedKey, model: String, allowUnpriced: Bool) async throws -> Price {
        let cacheKey = CacheKey(tenantID: key.tenantID, currency: key.currency.rawValue, model: model)
        let now = ContinuousClock.now
        let price: Price?
        if let entry = entries.withLock({ $0[cacheKey] }), entry.expires > now {
            price = entry.price
        } else {
            do {
                price = try await withDeadline(.seconds(3)) { [database, directory] in
                    try await database.read {
                        try await directory.price(tenantID: key.tenantID, model: model, currency: key.currency, on: $0)
                    }
                }
            } catch {
                throw ProxyError.unavailable("The gateway cannot reach its database; retry shortly.")
            }
            entries.withLock { $0[cacheKey] = Entry(price: price, expires: now + ttl) }
        }
        if let price { return price }
        if allowUnpriced { return Price(inputPerMillion: .zero, outputPerMillion: .zero) }
        throw ProxyError.forbidden("model_not_priced",
            "The model '\(model)' has no price in \(key.currency.rawValue) on this gateway, so its cost cannot be bounded.")
    }

    /// The tenant's ceiling price (its highest per-token prices), for holds on agent requests.
    func ceiling(for key: ResolvedKey) async throws -> Price {
        let cacheKey = CacheKey(tenantID: key.tenantID, currency: key.currency.rawValue, model: nil)
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[cacheKey] }), entry.expires > now, let price = entry.price { return price }
        let price: Price?
        do {
            price = try await withDeadline(.seconds(3)) { [database, directory] in
                try await database.read { try await directory.ceilingPrice(tenantID: key.tenantID, currency: key.currency, on: $0) }
            }
        } catch {
            throw ProxyError.unavailable("The gateway cannot reach its database; retry shortly.")
        }
        guard let price else {
            throw ProxyError.forbidden("model_not_priced", "No prices exist in \(key.currency.rawValue) on this gateway.")
        }
        entries.withLock { $0[cacheKey] = Entry(price: price, expires: now + ttl) }
        return price
    }

    func invalidateAll() { entries.withLock { $0.removeAll() } }
}
