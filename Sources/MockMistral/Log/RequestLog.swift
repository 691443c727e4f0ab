import HTTPTypes
import NIOCore

/// One request as the mock received it, plus what it answered.
public struct RecordedRequest: Sendable {
    /// 1, 2, 3… in arrival order of the responses; survives `RequestLog.clear()`, so
    /// `GET /_mock/requests?since=N` works across clears.
    public let sequence: Int
    /// Unix time (seconds) when the request was handled.
    public let receivedAt: Double
    public let method: HTTPRequest.Method
    /// Path without the query string, e.g. `/v1/chat/completions`.
    public let path: String
    public let query: String?
    /// Every header as received, in order, duplicates included.
    public let headers: HTTPFields
    public let body: ByteBuffer
    /// The bearer key from `Authorization: Bearer <key>`, nil when absent or not a bearer.
    public let apiKey: String?
    /// Status of the response head; nil when the connection was reset before any response.
    public let status: Int?
    /// The injected fault this request consumed, if any.
    public let fault: Fault?
    /// Usage the response reported (nil for errors and non-metered endpoints).
    public let usage: MockUsage?
    /// Whether the response was a server-sent-event stream.
    public let streamed: Bool

    public var bodyBytes: [UInt8] { Array(body.readableBytesView) }
    public var bodyText: String { String(buffer: body) }

    /// First value of a header, by name (case-insensitive).
    public func header(_ name: String) -> String? {
        guard let field = HTTPField.Name(name) else { return nil }
        return headers[field]
    }
}

/// Thread-safe log of the most recent requests to Mistral paths (`/_mock/*` calls are not logged).
/// Bounded by `MockMistralConfiguration.requestLogCapacity` so benchmarks cannot exhaust memory.
public final class RequestLog: Sendable {
    private struct Storage {
        var entries: [RecordedRequest] = []
        var nextSequence = 1
        var capacity: Int
    }

    private let storage: Locked<Storage>

    init(capacity: Int) {
        storage = Locked(Storage(capacity: capacity))
    }

    /// Oldest first.
    public var entries: [RecordedRequest] {
        storage.withLockedValue { Array($0.entries.suffix($0.capacity)) }
    }

    public var count: Int { storage.withLockedValue { min($0.entries.count, $0.capacity) } }

    public var last: RecordedRequest? { storage.withLockedValue { $0.capacity > 0 ? $0.entries.last : nil } }

    /// Entries for one path (exact match, query ignored).
    public func entries(path: String) -> [RecordedRequest] {
        entries.filter { $0.path == path }
    }

    /// Entries with a sequence number greater than `sequence`.
    public func entries(after sequence: Int) -> [RecordedRequest] {
        entries.filter { $0.sequence > sequence }
    }

    public func clear() {
        storage.withLockedValue { $0.entries.removeAll(keepingCapacity: true) }
    }

    func setCapacity(_ capacity: Int) {
        storage.withLockedValue { $0.capacity = max(0, capacity) }
    }

    func append(
        receivedAt: Double, method: HTTPRequest.Method, path: String, query: String?, headers: HTTPFields,
        body: ByteBuffer, apiKey: String?, status: Int?, fault: Fault?, usage: MockUsage?, streamed: Bool
    ) {
        storage.withLockedValue { storage in
            let entry = RecordedRequest(
                sequence: storage.nextSequence, receivedAt: receivedAt, method: method, path: path, query: query,
                headers: headers, body: body, apiKey: apiKey, status: status, fault: fault, usage: usage, streamed: streamed
            )
            storage.nextSequence += 1
            guard storage.capacity > 0 else { return }
            storage.entries.append(entry)
            // Trim in batches so appends stay amortised O(1) instead of shifting on every request.
            if storage.entries.count >= storage.capacity + max(1, storage.capacity / 4) {
                storage.entries.removeFirst(storage.entries.count - storage.capacity)
            }
        }
    }
}
