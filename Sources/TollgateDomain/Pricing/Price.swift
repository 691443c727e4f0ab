/// A model's price in one currency. Per-token prices are stored as money per million tokens, in
/// nano-units, which is exact for every published price (e.g. $0.15/M = 150,000,000 nanos).
public struct Price: Sendable, Hashable {
    public var inputPerMillion: Money
    public var outputPerMillion: Money
    public var cachedInputPerMillion: Money
    /// For page-priced endpoints (OCR): money per page.
    public var perPage: Money?

    public init(inputPerMillion: Money, outputPerMillion: Money, cachedInputPerMillion: Money? = nil, perPage: Money? = nil) {
        self.inputPerMillion = inputPerMillion
        self.outputPerMillion = outputPerMillion
        // Mistral bills cached input at 10 % of the input price unless told otherwise.
        self.cachedInputPerMillion = cachedInputPerMillion ?? Money(nanos: inputPerMillion.nanos / 10)
        self.perPage = perPage
    }
}

/// What a request consumed, as reported by Mistral (`usage`, or `usage_info` for OCR).
public struct Usage: Sendable, Hashable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens served from Mistral's cache (a subset of `promptTokens`).
    public var cachedTokens: Int
    public var pages: Int

    public init(promptTokens: Int = 0, completionTokens: Int = 0, cachedTokens: Int = 0, pages: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
        self.pages = pages
    }
}

extension Price {
    /// The cost of one request.
    ///
    /// Rounding rule: the exact cost is summed over all components first, then rounded **up** to the
    /// next whole nano-unit, once per request. A request is never charged less than it cost, and the
    /// rounding adds less than one nano-unit per request.
    public func cost(of usage: Usage) -> Money {
        let cached = Int128(max(0, min(usage.cachedTokens, usage.promptTokens)))
        let uncached = Int128(max(0, usage.promptTokens)) - cached
        let numerator = uncached * Int128(inputPerMillion.nanos)
            + cached * Int128(cachedInputPerMillion.nanos)
            + Int128(max(0, usage.completionTokens)) * Int128(outputPerMillion.nanos)
        let tokenCost = (numerator + 999_999) / 1_000_000
        let pageCost = Int128(max(0, usage.pages)) * Int128(perPage?.nanos ?? 0)
        let total = tokenCost + pageCost
        return Money(nanos: total > Int128(Int64.max) ? Int64.max : Int64(total))
    }
}
