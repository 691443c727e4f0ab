/// Upstream failures a test can make the mock produce. Each injected fault is consumed by the next
/// matching request(s); see `MockMistral.inject(_:count:matching:)`.
public enum Fault: Sendable, Hashable {
    /// 429 with `retry-after` and Mistral's rate-limit body
    /// `{"object":"error","message":"Rate limit exceeded","type":"rate_limited","param":null,"code":"1300","raw_status_code":429}`.
    case rateLimited(retryAfterSeconds: Int = 1)
    /// A 5xx with the body the real stack sends for it (500: API `server_error` envelope;
    /// 502/504: the Kong gateway's `{"message":…,"request_id":…}`; 503: "Service tier capacity exceeded").
    case serverError(status: Int = 500)
    /// The TCP connection is reset (SO_LINGER 0 + close → RST) before any byte of the response.
    case resetBeforeHeaders
    /// Streaming requests only: the response head and the first `afterChunks` SSE events are sent,
    /// then the connection is closed without the chunked-encoding terminator.
    case disconnectMidStream(afterChunks: Int)
    /// Streaming requests only: the stream ends cleanly but its final chunk carries no `usage`
    /// and no `data: [DONE]` follows, the case where a meter has to estimate.
    case streamWithoutUsage
    /// Delay before the response head, on top of the configured latency; the response is normal.
    case slowFirstByte(Duration)
    /// Streaming requests only: the response head and the first `afterChunks` SSE events are sent,
    /// then nothing (the connection stays open) for `stall`, then the rest of the stream as usual.
    /// If the client closes the connection during the pause, the pause ends and nothing more is sent.
    case stallMidStream(afterChunks: Int, stall: Duration)

    /// Stream-shaped faults wait for a streaming request instead of being spent on a JSON one.
    var requiresStreaming: Bool {
        switch self {
        case .disconnectMidStream, .streamWithoutUsage, .stallMidStream: return true
        default: return false
        }
    }

    /// Name used by the HTTP control API and the request log.
    public var name: String {
        switch self {
        case .rateLimited: return "rate_limited"
        case .serverError: return "server_error"
        case .resetBeforeHeaders: return "reset_before_headers"
        case .disconnectMidStream: return "disconnect_mid_stream"
        case .streamWithoutUsage: return "stream_without_usage"
        case .slowFirstByte: return "slow_first_byte"
        case .stallMidStream: return "stall_mid_stream"
        }
    }
}

/// A fault waiting in the queue.
public struct PendingFault: Sendable, Hashable {
    public var fault: Fault
    /// How many more matching requests it will hit.
    public var remaining: Int
    /// Request path it is limited to (exact, or a prefix when it ends in `*`); nil matches every `/v1` path.
    public var path: String?

    func matches(path requestPath: String, streaming: Bool) -> Bool {
        if fault.requiresStreaming && !streaming { return false }
        guard let path else { return true }
        if path.hasSuffix("*") { return requestPath.hasPrefix(path.dropLast()) }
        return requestPath == path
    }
}

/// FIFO of injected faults; the first pending fault that matches a request is the one applied.
final class FaultQueue: Sendable {
    private let pending = Locked<[PendingFault]>([])

    func inject(_ fault: Fault, count: Int, path: String?) {
        guard count > 0 else { return }
        pending.withLockedValue { $0.append(PendingFault(fault: fault, remaining: count, path: path)) }
    }

    func take(path: String, streaming: Bool) -> Fault? {
        pending.withLockedValue { queue in
            guard !queue.isEmpty,
                  let index = queue.firstIndex(where: { $0.matches(path: path, streaming: streaming) })
            else { return nil }
            let fault = queue[index].fault
            queue[index].remaining -= 1
            if queue[index].remaining == 0 { queue.remove(at: index) }
            return fault
        }
    }

    var snapshot: [PendingFault] { pending.withLockedValue { $0 } }

    func clear() { pending.withLockedValue { $0.removeAll() } }
}
