import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import NIOHTTP1

/// Server-side limits on slow clients, on top of Hummingbird's idle timeout (which only sees whole
/// HTTP parts, so a client trickling a request head or body a byte at a time would keep resetting
/// or never start it):
/// - **head**: the full request head must arrive within `head` of its first byte, else the
///   connection is closed (nothing can be answered: there is no request yet);
/// - **body**: the whole body must arrive within `body` of the head. When it does not, the request
///   body read fails with `RequestBodyTimeout` (the proxy answers 408 in Mistral's error shape if
///   it is still reading the body) and the connection is closed once that response is written;
///   if the request was answered already (e.g. a 401 before its body was read), the connection is
///   closed at once instead of draining the body for ever.
/// Time spent waiting for the proxy itself (a pipelined request queued behind a slow response) is
/// not counted against the client.
struct ClientTimeouts: Sendable {
    var head: Duration
    var body: Duration
}

/// Thrown by the request body when it did not arrive within the body timeout.
struct RequestBodyTimeout: Error {}

/// Hummingbird's HTTP/1.1 child channel with the slow-client timers of `ClientTimeouts` added to
/// every connection's pipeline.
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let base: HTTP1Channel
    let timeouts: ClientTimeouts

    static func builder(configuration: HTTP1Channel.Configuration, timeouts: ClientTimeouts) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            GuardedHTTP1Channel(base: HTTP1Channel(responder: responder, configuration: configuration), timeouts: timeouts)
        }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let timeouts = self.timeouts
        return base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            let deadlines = RequestDeadlines(timeouts: timeouts, logger: logger)
            // Raw bytes, before the HTTP decoder: the first byte of a request starts its head timer.
            try pipeline.addHandler(ClientBytesWatcher(deadlines), position: .first)
            // Decoded parts, right after the decoder: heads, body ends and response ends.
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try pipeline.addHandler(RequestPartsWatcher(deadlines), position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// One connection's request timers. Lives on the connection's event loop (both watchers share it).
final class RequestDeadlines {
    private let head: TimeAmount
    private let body: TimeAmount
    private let logger: Logger
    /// The parts watcher's context: where timeouts close the connection or fail the body.
    var context: ChannelHandlerContext?

    /// Requests whose head was decoded and whose response has not ended.
    private var unanswered = 0
    /// The last decoded request's body has not ended yet.
    private var readingBody = false
    /// Bytes of a next request arrived; its head is not decoded yet.
    private var partialHead = false
    /// The body timer fired: the rest of the input is dropped and the connection closes after the
    /// response in progress.
    private(set) var bodyExpired = false
    private var headTimer: Scheduled<Void>?
    private var bodyTimer: Scheduled<Void>?

    init(timeouts: ClientTimeouts, logger: Logger) {
        head = .nanoseconds(timeouts.head.nanoseconds)
        body = .nanoseconds(timeouts.body.nanoseconds)
        self.logger = logger
    }

    /// Bytes were read from the socket (called before they are decoded).
    func bytesArrived() {
        guard !readingBody, !partialHead else { return }
        partialHead = true
        if unanswered == 0 { armHeadTimer() }
    }

    func headDecoded() {
        partialHead = false
        headTimer?.cancel()
        headTimer = nil
        unanswered += 1
        readingBody = true
        if unanswered == 1 { armBodyTimer() }
    }

    func bodyEnded() {
        readingBody = false
        bodyTimer?.cancel()
        bodyTimer = nil
    }

    /// A response ended. Returns true when the connection is to be closed after it.
    func responseEnded() -> Bool {
        unanswered = max(0, unanswered - 1)
        if bodyExpired { return unanswered == 0 }
        // The timers of a request queued behind that response start now.
        if unanswered == 0, partialHead { armHeadTimer() }
        if unanswered == 1, readingBody { armBodyTimer() }
        return false
    }

    func connectionClosed() {
        headTimer?.cancel()
        bodyTimer?.cancel()
        headTimer = nil
        bodyTimer = nil
        context = nil
    }

    private func armHeadTimer() {
        guard headTimer == nil, let context else { return }
        headTimer = context.eventLoop.assumeIsolated().scheduleTask(in: head) { [self] in
            headTimer = nil
            guard partialHead, let context = self.context else { return }
            ClientTimeoutMetrics.timedOut(.head)
            logger.info("closing a connection whose request head did not arrive in time",
                        metadata: ["timeout_ms": "\(head.nanoseconds / 1_000_000)"])
            context.close(promise: nil)
        }
    }

    private func armBodyTimer() {
        guard bodyTimer == nil, readingBody, let context else { return }
        bodyTimer = context.eventLoop.assumeIsolated().scheduleTask(in: body) { [self] in
            bodyTimer = nil
            guard readingBody, let context = self.context else { return }
            bodyExpired = true
            ClientTimeoutMetrics.timedOut(.body)
            logger.info("request body did not arrive in time", metadata: ["timeout_ms": "\(body.nanoseconds / 1_000_000)"])
            if unanswered == 0 {
                // Already answered: Hummingbird is only draining the body; stop that.
                context.close(promise: nil)
            } else {
                // Fails the body read in progress (or the next one); the response closes the connection.
                context.fireErrorCaught(RequestBodyTimeout())
            }
        }
    }
}

/// First in the pipeline: sees every byte read, before the HTTP decoder.
final class ClientBytesWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let deadlines: RequestDeadlines

    init(_ deadlines: RequestDeadlines) { self.deadlines = deadlines }

    func handlerAdded(context: ChannelHandlerContext) { ClientTimeoutMetrics.connectionOpened() }
    func handlerRemoved(context: ChannelHandlerContext) { ClientTimeoutMetrics.connectionClosed() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if unwrapInboundIn(data).readableBytes > 0 { deadlines.bytesArrived() }
        context.fireChannelRead(data)
    }
}

/// Right after the HTTP decoder: request heads and ends in, response heads and ends out.
final class RequestPartsWatcher: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart
    private let deadlines: RequestDeadlines

    init(_ deadlines: RequestDeadlines) { self.deadlines = deadlines }

    func handlerAdded(context: ChannelHandlerContext) { deadlines.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { deadlines.connectionClosed() }

    func channelInactive(context: ChannelHandlerContext) {
        deadlines.connectionClosed()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After a body timeout the rest of the input is of no use: the connection is closing.
        guard !deadlines.bodyExpired else { return }
        switch unwrapInboundIn(data) {
        case .head: deadlines.headDecoded()
        case .body: break
        case .end: deadlines.bodyEnded()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where deadlines.bodyExpired:
            head.headers.replaceOrAdd(name: "connection", value: "close")
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end:
            if deadlines.responseEnded() {
                context.writeAndFlush(data, promise: promise)
                context.close(promise: nil)
            } else {
                context.write(data, promise: promise)
            }
        case .head, .body:
            context.write(data, promise: promise)
        }
    }
}

enum ClientTimeoutMetrics {
    enum Kind: String { case head, body }

    private static let open = Locked(0)
    private static let connections = Gauge(label: "tollgate_client_connections")
    private static let head = Counter(label: "tollgate_client_timeouts_total", dimensions: [("kind", "head")])
    private static let body = Counter(label: "tollgate_client_timeouts_total", dimensions: [("kind", "body")])

    static func connectionOpened() { connections.record(open.withLock { $0 += 1; return $0 }) }
    static func connectionClosed() { connections.record(open.withLock { $0 -= 1; return $0 }) }
    static func timedOut(_ kind: Kind) { (kind == .head ? head : body).increment() }
}

/// The request body as the pipeline reads it, noting whether it failed by the body timeout (so
/// the response can be a 408 rather than what the pipeline makes of a failed body read).
final class BodyTimeoutWatch: Sendable {
    private let expired = Locked(false)

    var timedOut: Bool { expired.withLock { $0 } }

    func watching(_ body: RequestBody) -> RequestBody {
        RequestBody(asyncSequence: Watched(base: body, watch: self))
    }

    private struct Watched: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let base: RequestBody
        let watch: BodyTimeoutWatch

        func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator(), watch: watch) }

        struct Iterator: AsyncIteratorProtocol {
            var base: RequestBody.AsyncIterator
            let watch: BodyTimeoutWatch

            mutating func next() async throws -> ByteBuffer? {
                do {
                    return try await base.next()
                } catch let error as RequestBodyTimeout {
                    watch.expired.withLock { $0 = true }
                    throw error
                }
            }
        }
    }

    /// 408 in Mistral's error envelope; the connection closes after it.
    static func response(requestID: String, limit: Duration) -> Response {
        var response = ProxyError.requestTimeout(limit: limit).response(requestID: requestID)
        response.headers[.connection] = "close"
        return response
    }
}

extension ProxyError {
    /// The request body did not arrive within the body timeout.
    static func requestTimeout(limit: Duration) -> ProxyError {
        ProxyError(status: .requestTimeout, type: "invalid_request_error", code: "request_timeout",
                   message: "The request body did not arrive within \(limit.milliseconds) ms.")
    }
}
