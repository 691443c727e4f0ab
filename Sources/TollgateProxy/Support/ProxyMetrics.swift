import Foundation
import Metrics

/// The data plane's Prometheus series (see README, "Metrics"). Labels stay low-cardinality:
/// endpoint family, model id, status code, tenant id; never key ids or anything secret.
enum ProxyMetrics {
    static let inFlight = Gauge(label: "tollgate_requests_in_flight")
    private static let inFlightCount = Locked(0)

    static func requestStarted() { inFlight.record(inFlightCount.withLock { $0 += 1; return $0 }) }
    static func requestFinished() { inFlight.record(inFlightCount.withLock { $0 -= 1; return $0 }) }

    // Handles are cached per label values: creating one goes through the registry's lookup,
    // which is measurable on the hot path. The cache keys are the values themselves, not text
    // built from them, so a hit allocates nothing.
    private struct RequestKey: Hashable { let endpoint: String; let model: String?; let status: Int }
    private struct UpstreamKey: Hashable { let endpoint: String; let status: Int }
    private struct UsageKey: Hashable { let tenant: UUID; let model: String }
    private struct UsageCounters { let prompt: Counter; let completion: Counter; let cost: Counter }
    private static let requestTimers = Locked([RequestKey: Timer]())
    private static let upstreamTimers = Locked([UpstreamKey: Timer]())
    private static let usageCounters = Locked([UsageKey: UsageCounters]())
    private static let rejectionCounters = Locked([String: Counter]())
    private static let reservationTimer = Timer(label: "tollgate_reservation_seconds", dimensions: [], preferredDisplayUnit: .seconds)
    /// The database lookup of a key the cache did not have (pool checkout included).
    private static let keyLookupTimer = Timer(label: ProxyMetricBuckets.keyLookupLabel, dimensions: [], preferredDisplayUnit: .seconds)

    private static func cached<Key: Hashable, Handle>(_ cache: Locked<[Key: Handle]>, _ key: Key, make: () -> Handle) -> Handle {
        if let handle = cache.withLock({ $0[key] }) { return handle }
        let handle = make()
        cache.withLock { $0[key] = handle }
        return handle
    }

    static func request(endpoint: String, model: String?, status: Int, duration: Duration) {
        cached(requestTimers, RequestKey(endpoint: endpoint, model: model, status: status)) {
            Timer(label: "tollgate_request_duration_seconds",
                  dimensions: [("endpoint", endpoint), ("model", model ?? "-"), ("status", "\(status)")], preferredDisplayUnit: .seconds)
        }.recordNanoseconds(duration.nanoseconds)
    }

    static func upstream(endpoint: String, status: Int, firstByte: Duration) {
        cached(upstreamTimers, UpstreamKey(endpoint: endpoint, status: status)) {
            Timer(label: "tollgate_upstream_first_byte_seconds", dimensions: [("endpoint", endpoint), ("status", "\(status)")],
                  preferredDisplayUnit: .seconds)
        }.recordNanoseconds(firstByte.nanoseconds)
    }

    static func reservation(_ duration: Duration) {
        reservationTimer.recordNanoseconds(duration.nanoseconds)
    }

    static func keyLookup(_ duration: Duration) {
        keyLookupTimer.recordNanoseconds(duration.nanoseconds)
    }

    static func usage(tenant: UUID, model: String, promptTokens: Int, completionTokens: Int, costNanos: Int64) {
        let counters = cached(usageCounters, UsageKey(tenant: tenant, model: model)) {
            let dimensions = [("tenant", tenant.apiString), ("model", model)]
            return UsageCounters(prompt: Counter(label: "tollgate_prompt_tokens_total", dimensions: dimensions),
                                 completion: Counter(label: "tollgate_completion_tokens_total", dimensions: dimensions),
                                 cost: Counter(label: "tollgate_cost_nanos_total", dimensions: dimensions))
        }
        counters.prompt.increment(by: promptTokens)
        counters.completion.increment(by: completionTokens)
        counters.cost.increment(by: costNanos)
    }

    /// Admissions by path: on a ticket (no round trip) or exactly (one round trip, whatever its outcome).
    static let admittedOnTicket = Counter(label: "tollgate_admissions_total", dimensions: [("path", "ticket")])
    static let admittedExactly = Counter(label: "tollgate_admissions_total", dimensions: [("path", "exact")])

    static func rejection(_ reason: String) {
        cached(rejectionCounters, reason) { Counter(label: "tollgate_rejections_total", dimensions: [("reason", reason)]) }.increment()
    }
}

/// Histogram buckets for the proxy's durations, for the metrics factory the executable sets up.
public enum ProxyMetricBuckets {
    /// The gateway's own stages take well under a millisecond: the usual defaults start at 5 ms.
    public static let durations: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .microseconds(2_500_000), .seconds(5), .seconds(10),
        .seconds(30), .seconds(60), .seconds(120),
    ]

    static let keyLookupLabel = "tollgate_key_lookup_seconds"

    /// Finer buckets where they matter: a key lookup is one round trip of well under a
    /// millisecond, whose growth with the key table (the benchmark's check) is tens of µs at most.
    public static let byLabel: [String: [Duration]] = [
        keyLookupLabel: stride(from: 50, through: 1_000, by: 50).map { .microseconds($0) }
            + [.microseconds(1_500), .milliseconds(2), .microseconds(2_500), .milliseconds(5), .milliseconds(10),
               .milliseconds(25), .milliseconds(100), .seconds(1), .seconds(3)],
    ]
}
