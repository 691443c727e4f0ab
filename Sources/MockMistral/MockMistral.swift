import Hummingbird
import Logging

/// The one fake Mistral API of the project: a faithful HTTP double of `api.mistral.ai` for tests
/// (in-process), benchmarks and the local stack (`tollgate-mock-mistral`).
///
/// ```swift
/// let mock = MockMistral(configuration: .init(acceptedKeys: ["sk-upstream"]))
/// try await mock.withRunningServer { server in
///     // point the gateway at server.baseURL
///     mock.inject(.rateLimited(retryAfterSeconds: 2), matching: "/v1/chat/completions")
///     …
///     #expect(mock.requestLog.last?.apiKey == "sk-upstream")
/// }
/// ```
///
/// Everything is thread-safe and synchronous to read; the HTTP control API under `/_mock/` exposes
/// the same state to other processes.
public final class MockMistral: Sendable {
    private let configurationBox: Locked<MockMistralConfiguration>
    /// Requests received on Mistral paths, most recent last.
    public let requestLog: RequestLog
    let faults = FaultQueue()
    let counters = StatsCounter()
    let rateLimits = RateLimitTracker()
    let conversations = ConversationStore()
    let logger: Logger

    public init(configuration: MockMistralConfiguration = MockMistralConfiguration(), logger: Logger? = nil) {
        configurationBox = Locked(configuration)
        requestLog = RequestLog(capacity: configuration.requestLogCapacity)
        self.logger = logger ?? {
            var logger = Logger(label: "mock-mistral")
            logger.logLevel = .warning
            return logger
        }()
        _ = EmbeddingVectors.shared  // precompute vectors now, not on the first request
    }

    // MARK: Configuration

    public var configuration: MockMistralConfiguration {
        configurationBox.withLockedValue { $0 }
    }

    /// Changes take effect for requests that arrive afterwards (streams in flight keep their pace).
    public func updateConfiguration(_ update: (inout MockMistralConfiguration) -> Void) {
        let capacity = configurationBox.withLockedValue { configuration in
            update(&configuration)
            configuration.tokensPerChunk = max(1, configuration.tokensPerChunk)
            configuration.completionTokens = max(0, configuration.completionTokens)
            return configuration.requestLogCapacity
        }
        requestLog.setCapacity(capacity)
    }

    // MARK: Faults

    /// Queues `fault` for the next `count` requests to `path` (exact, or a prefix ending in `*`;
    /// nil = any Mistral path). Faults apply after authentication (like the real gateway, where
    /// Kong authenticates before rate limiting), so a request with a bad key does not consume one.
    /// Stream-only faults (`disconnectMidStream`, `streamWithoutUsage`) wait for a `stream: true` request.
    public func inject(_ fault: Fault, count: Int = 1, matching path: String? = nil) {
        faults.inject(fault, count: count, path: path)
    }

    public var pendingFaults: [PendingFault] { faults.snapshot }

    public func clearFaults() { faults.clear() }

    // MARK: Stats

    public var stats: MockStats { counters.snapshot }

    public func resetStats() { counters.reset() }

    /// Clears the request log, pending faults, stats, stored conversations and rate-limit windows.
    /// Configuration is kept.
    public func reset() {
        requestLog.clear()
        faults.clear()
        counters.reset()
        conversations.reset()
        rateLimits.reset()
    }

    // MARK: Catalog

    /// Every model id and alias the mock accepts (besides `ft:` fine-tuned ids).
    public static var knownModels: [String] { ModelCatalog.allNames }
}
