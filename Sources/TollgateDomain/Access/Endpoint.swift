/// The endpoint families a virtual key can be limited to (the endpoint allow-list).
/// Raw values are stable: they are stored in the database and used in the admin API.
public enum EndpointFamily: String, Sendable, Hashable, CaseIterable, Codable {
    case chat
    case fim
    case embeddings
    case moderations
    case classifications
    case agents
    case conversations
    case ocr
    case models
    case files
    /// Batch jobs are billed later by Mistral and bypass budgets, so they are never allowed implicitly.
    case batch

    /// Families a key may use when its allow-list is empty.
    public static let allowedByDefault: Set<EndpointFamily> = Set(allCases).subtracting([.batch])
}

/// A key's endpoint allow-list. Empty means every family except batch.
public struct EndpointAllowList: Sendable, Hashable {
    public let families: Set<EndpointFamily>

    public init(_ families: Set<EndpointFamily>) { self.families = families }

    public func allows(_ family: EndpointFamily) -> Bool {
        families.isEmpty ? EndpointFamily.allowedByDefault.contains(family) : families.contains(family)
    }
}

/// Request-rate and concurrency limits. `nil` means unlimited.
public struct RateLimits: Sendable, Hashable {
    public var requestsPerMinute: Int?
    public var tokensPerMinute: Int?
    public var maxConcurrent: Int?

    public init(requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, maxConcurrent: Int? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.maxConcurrent = maxConcurrent
    }
}
