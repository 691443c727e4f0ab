import Foundation
import Metrics

/// The data plane's Prometheus series (see README, "Metrics"). Labels stay low-cardinality:
/// endpoint family, model id, status code, tenant id; never key ids or anything secret.
enum ProxyMetrics {
    static let inFlight = Gauge(label: "tollgate_requests_in_flight")
    private static let inFlightCount = Locked(0)

    static func requestStarted() { inFlight.record(inFlightCount.withLock { $0 += 1; return $0 }) }
    static func requestFinished() { inFlight.record(inFlightCount.withLock { $0 -= 1; return $0 }) }

    static func request(endpoint: String, model: String?, status: Int, duration: Duration) {
        Timer(label: "tollgate_request_duration_seconds",
              dimensions: [("endpoint", endpoint), ("model", model ?? "-"), ("status", "\(status)")],
              preferredDisplayUnit: .seconds)
            .recordNanoseconds(duration.nanoseconds)
    }

    static func upstream(endpoint: String, status: Int, firstByte: Duration) {
        Timer(label: "tollgate_upstream_first_byte_seconds", dimensions: [("endpoint", endpoint), ("status", "\(status)")],
              preferredDisplayUnit: .seconds)
            .recordNanoseconds(firstByte.nanoseconds)
    }

    static func usage(tenant: UUID, model: String, promptTokens: Int, completionTokens: Int, costNanos: Int64) {
        let dimensions = [("tenant", tenant.apiString), ("model", model)]
        Counter(label: "tollgate_prompt_tokens_total", dimensions: dimensions).increment(by: promptTokens)
        Counter(label: "tollgate_completion_tokens_total", dimensions: dimensions).increment(by: completionTokens)
        Counter(label: "tollgate_cost_nanos_total", dimensions: dimensions).increment(by: costNanos)
    }

    static func rejection(_ reason: String) {
        Counter(label: "tollgate_rejections_total", dimensions: [("reason", reason)]).increment()
    }
}
