import HTTPTypes

/// Per-key counters behind the `x-ratelimit-*` headers (reference §6.3). Remaining values go down
/// with use like the real ones, so a gateway that surfaces or logs them sees plausible numbers; the
/// limits are never enforced (inject `Fault.rateLimited` for a 429).
final class RateLimitTracker: Sendable {
    private struct Window {
        var minute: Int
        var requests: Int
        var tokens: Int
        var monthTokens: Int
    }

    private let windows = Locked<[String: Window]>([:])

    struct Snapshot {
        var remainingRequestsPerMinute: Int
        var remainingTokensPerMinute: Int
        var remainingTokensPerMonth: Int
    }

    func consume(key: String, tokens: Int, policy: RateLimitPolicy, now: Double) -> Snapshot {
        let minute = Int(now / 60)
        let window: Window = windows.withLockedValue { windows in
            var window = windows[key] ?? Window(minute: minute, requests: 0, tokens: 0, monthTokens: 0)
            if window.minute != minute {
                window.minute = minute
                window.requests = 0
                window.tokens = 0
            }
            window.requests += 1
            window.tokens += tokens
            window.monthTokens += tokens
            windows[key] = window
            return window
        }
        return Snapshot(
            remainingRequestsPerMinute: max(0, policy.requestsPerMinute - window.requests),
            remainingTokensPerMinute: max(0, policy.tokensPerMinute - window.tokens),
            remainingTokensPerMonth: max(0, policy.tokensPerMonth - window.monthTokens)
        )
    }

    func reset() { windows.withLockedValue { $0.removeAll() } }
}

extension HTTPField.Name {
    static let rateLimitRequestsMinute = HTTPField.Name("x-ratelimit-limit-req-minute")!
    static let rateRemainingRequestsMinute = HTTPField.Name("x-ratelimit-remaining-req-minute")!
    static let rateLimitTokensMinute = HTTPField.Name("x-ratelimit-limit-tokens-minute")!
    static let rateRemainingTokensMinute = HTTPField.Name("x-ratelimit-remaining-tokens-minute")!
    static let rateLimitTokensMonth = HTTPField.Name("x-ratelimit-limit-tokens-month")!
    static let rateRemainingTokensMonth = HTTPField.Name("x-ratelimit-remaining-tokens-month")!
    static let rateQueryCost = HTTPField.Name("x-ratelimit-tokens-query-cost")!
    static let kongRequestID = HTTPField.Name("x-kong-request-id")!
    static let kongUpstreamLatency = HTTPField.Name("x-kong-upstream-latency")!
    static let kongProxyLatency = HTTPField.Name("x-kong-proxy-latency")!
    static let mistralCorrelationID = HTTPField.Name("mistral-correlation-id")!
}

extension HTTPFields {
    mutating func addRateLimitHeaders(policy: RateLimitPolicy, snapshot: RateLimitTracker.Snapshot, queryCost: Int) {
        self[.rateLimitRequestsMinute] = String(policy.requestsPerMinute)
        self[.rateRemainingRequestsMinute] = String(snapshot.remainingRequestsPerMinute)
        self[.rateLimitTokensMinute] = String(policy.tokensPerMinute)
        self[.rateRemainingTokensMinute] = String(snapshot.remainingTokensPerMinute)
        self[.rateLimitTokensMonth] = String(policy.tokensPerMonth)
        self[.rateRemainingTokensMonth] = String(snapshot.remainingTokensPerMonth)
        self[.rateQueryCost] = String(queryCost)
    }
}
