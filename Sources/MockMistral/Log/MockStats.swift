/// Counters over everything the mock served since start (or the last reset); unlike the request
/// log they are never trimmed, so a benchmark can read totals after millions of requests.
public struct MockStats: Sendable, Equatable {
    /// Requests to `/v1` (and other non-control) paths.
    public var requestsTotal = 0
    /// Per route template, e.g. `/v1/chat/completions`, `/v1/models/{model_id}`, `unknown`.
    public var requestsByRoute: [String: Int] = [:]
    /// Per response status; connection resets count under status 0.
    public var requestsByStatus: [Int: Int] = [:]
    public var faultsApplied = 0
    public var streamsStarted = 0
    /// Streams that ended normally (not cut by a fault or the client).
    public var streamsCompleted = 0
    /// Sum of usage the mock reported.
    public var promptTokens = 0
    public var completionTokens = 0

    public init() {}
}

final class StatsCounter: Sendable {
    private let stats = Locked(MockStats())

    var snapshot: MockStats { stats.withLockedValue { $0 } }

    func reset() { stats.withLockedValue { $0 = MockStats() } }

    func record(route: String, status: Int, fault: Bool, streamed: Bool, usage: MockUsage?) {
        stats.withLockedValue { stats in
            stats.requestsTotal += 1
            stats.requestsByRoute[route, default: 0] += 1
            stats.requestsByStatus[status, default: 0] += 1
            if fault { stats.faultsApplied += 1 }
            if streamed { stats.streamsStarted += 1 }
            if let usage {
                stats.promptTokens += usage.promptTokens
                stats.completionTokens += usage.completionTokens
            }
        }
    }

    func streamCompleted() { stats.withLockedValue { $0.streamsCompleted += 1 } }
}
