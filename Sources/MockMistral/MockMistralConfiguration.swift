/// Everything about the mock that a test, benchmark or the local stack may want to tune.
/// All of it can also be changed at runtime (`MockMistral.updateConfiguration`, `PATCH /_mock/config`).
public struct MockMistralConfiguration: Sendable, Equatable {
    /// Bearer keys the mock accepts. Empty means "any non-empty bearer key", which is what most tests
    /// want; a non-empty set lets a test prove the gateway swapped in the right upstream key.
    public var acceptedKeys: Set<String>
    /// Added before the response head of every `/v1` response (time to first byte).
    public var latency: Duration
    /// Pause between two server-sent events of a stream.
    public var streamChunkDelay: Duration
    /// Length of the canned reply in tokens, before `max_tokens` caps it. This is the completion
    /// token count of every uncapped text reply (see `MockUsageRule`).
    public var completionTokens: Int
    /// Reply tokens carried by one streamed content chunk (the real API sends roughly one).
    public var tokensPerChunk: Int
    /// Which of the two 422 bodies the real API has been observed to send (reference §6.2).
    public var validationErrorStyle: ValidationErrorStyle
    /// Reject model ids that are not in the catalog with the real 400 `invalid_model` error.
    /// `ft:`-prefixed (fine-tuned) ids are always accepted.
    public var rejectUnknownModels: Bool
    /// Add the random-length `"p"` padding field live streams carry on content and final chunks.
    public var streamPadding: Bool
    /// The request log keeps the most recent N requests (stats keep counting past it), so a
    /// long benchmark does not grow memory without bound (entries keep whole bodies; 0 disables the log).
    public var requestLogCapacity: Int
    /// Largest request body accepted (413 beyond it).
    public var maxBodyBytes: Int
    /// Limits advertised in the `x-ratelimit-*` headers. The mock reports them but never enforces
    /// them; inject `Fault.rateLimited` to get a 429.
    public var rateLimits: RateLimitPolicy

    public init(
        acceptedKeys: Set<String> = [],
        latency: Duration = .zero,
        streamChunkDelay: Duration = .zero,
        completionTokens: Int = 16,
        tokensPerChunk: Int = 1,
        validationErrorStyle: ValidationErrorStyle = .detail,
        rejectUnknownModels: Bool = true,
        streamPadding: Bool = true,
        requestLogCapacity: Int = 1_000,
        maxBodyBytes: Int = 64 << 20,
        rateLimits: RateLimitPolicy = RateLimitPolicy()
    ) {
        self.acceptedKeys = acceptedKeys
        self.latency = latency
        self.streamChunkDelay = streamChunkDelay
        self.completionTokens = max(0, completionTokens)
        self.tokensPerChunk = max(1, tokensPerChunk)
        self.validationErrorStyle = validationErrorStyle
        self.rejectUnknownModels = rejectUnknownModels
        self.streamPadding = streamPadding
        self.requestLogCapacity = max(0, requestLogCapacity)
        self.maxBodyBytes = maxBodyBytes
        self.rateLimits = rateLimits
    }
}

/// The real API has sent 422s in two shapes; the official SDK accepts both (reference §6.2).
public enum ValidationErrorStyle: String, Sendable, Equatable, CaseIterable {
    /// Bare FastAPI form, the spec's `HTTPValidationError`: `{"detail":[{type,loc,msg,input}]}`.
    /// Observed live in 2026, hence the default.
    case detail
    /// Mistral envelope around the same list:
    /// `{"object":"error","message":{"detail":[…]},"type":"invalid_request_error","param":null,"code":null}`
    /// (observed 2024-04 … 2025-12).
    case wrapped
}

/// Values for the `x-ratelimit-*` response headers (reference §6.3).
public struct RateLimitPolicy: Sendable, Equatable {
    public var requestsPerMinute: Int
    public var tokensPerMinute: Int
    public var tokensPerMonth: Int

    public init(requestsPerMinute: Int = 720, tokensPerMinute: Int = 5_000_000, tokensPerMonth: Int = 10_000_000_000) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.tokensPerMonth = tokensPerMonth
    }
}
