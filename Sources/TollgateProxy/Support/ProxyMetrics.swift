import Foundation
import Metrics

/// The data plane's Prometheus series (see README, "Metrics"). Labels stay low-cardinality:
/// endpoint family, model id, status code, tenant id; never key ids or anything secret.
enum ProxyMetrics {
    static let inFlight = Gauge(label: "tollgate_requests_in_flight")
    private static let inFlightCount = Locked(0)

    static func requestStarted() { inFlight.record(inFlightCount.withLock { $0 += 1; return $0 }) }
    static func requestFinished() { inFlight.record(inFlightCount.withLock { $0 -= 1; return $0 }) }

    // Handles are cached per label and dimensions: creating one goes through the registry's
    // lookup, which is measurable on the hot path.
    private static let timers = Locked([String: Timer]())
    private static let counters = Locked([String: Counter]())

    private static func timer(_ label: String, _ dimensions: [(String, String)]) -> Timer {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        if let cached = timers.withLock({ $0[key] }) { return cached }
        let timer = Timer(label: label, dimensions: dimensions, preferredDisplayUnit: .seconds)
        timers.withLock { $0[key] = timer }
        return timer
    }

    private static func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        if let cached = counters.withLock({ $0[key] }) { return cached }
        let counter = Counter(label: label, dimensions: dimensions)
        counters.withLock { $0[key] = counter }
        return counter
    }

    static func request(endpoint: String, model: String?, status: Int, duration: Duration) {
        timer("tollgate_request_duration_seconds", [("endpoint", endpoint), ("model", model ?? "-"), ("status", "\(status)")])
            .recordNanoseconds(duration.nanoseconds)
    }

    static func upstream(endpoint: String, status: Int, firstByte: Duration) {
        timer("tollgate_upstream_first_byte_seconds", [("endpoint", endpoint), ("status", "\(status)")])
            .recordNanoseconds(firstByte.nanoseconds)
    }

    static func reservation(_ duration: Duration) {
        timer("tollgate_reservation_seconds", []).recordNanoseconds(duration.nanoseconds)
    }

    static func usage(tenant: UUID, model: String, promptTokens: Int, completionTokens: Int, costNanos: Int64) {
        let dimensions = [("tenant", tenant.apiString), ("model", model)]
        counter("tollgate_prompt_tokens_total", dimensions).increment(by: promptTokens)
        counter("tollgate_completion_tokens_total", dimensions).increment(by: completionTokens)
        counter("tollgate_cost_nanos_total", dimensions).increment(by: costNanos)
    }

    /// Admissions by path: on a ticket (no round trip) or exactly (one round trip, whatever its outcome).
    static let admittedOnTicket = Counter(label: "tollgate_admissions_total", dimensions: [("path", "ticket")])
    static let admittedExactly = Counter(label: "tollgate_admissions_total", dimensions: [("path", "exact")])

    static func rejection(_ reason: String) {
        counter("tollgate_rejections_total", [("reason", reason)]).increment()
    }
}
