import AsyncHTTPClient
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// What was received from Mistral: the response head and its body still streaming.
struct UpstreamResponse: Sendable {
    let status: Int
    let headers: HTTPHeaders
    /// Cut (throws a 504 `ProxyError`) when Mistral sends nothing for the idle timeout.
    let body: UpstreamBody
    let credentialID: UUID
    let attempts: Int
    let firstByteLatency: Duration
}

/// Stage 4: sends the client's body bytes, as received, to Mistral with the tenant's key.
/// Only allowlisted headers go upstream; redirects are not followed; connection failures and
/// 429/502/503/504 are retried with backoff (honouring Retry-After) across the key's credentials,
/// but only before anything has been sent to the client. One hold covers every attempt.
///
/// Timeouts: each attempt must get Mistral's response head within `firstByteTimeout` (and
/// `totalTimeout`); after that, a stream is cut when no chunk arrives for `idleTimeout`. The HTTP
/// client's own read timeout, max(first byte, idle), stays as a backstop, and bounds JSON bodies.
struct Forwarder: Sendable {
    let clients: UpstreamClients
    let maxAttempts: Int
    let totalTimeout: Duration
    var firstByteTimeout: Duration = .seconds(120)
    var idleTimeout: Duration = .seconds(60)
    let logger: Logger
    /// Credentials that recently failed to connect are tried last for a while, so one dead host
    /// does not cost every request a connect timeout.
    let health = CredentialHealth(cooldown: .seconds(30))

    /// Client headers that may reach Mistral. Everything else (Authorization, cookies,
    /// X-Forwarded-*, hop-by-hop, Accept-Encoding so usage stays readable) is dropped.
    static let forwardedHeaders: [HTTPField.Name] = [.contentType, .accept, .userAgent, .init("x-request-id")!]

    static let retriableStatuses: Set<Int> = [429, 502, 503, 504]

    func forward(method: HTTPRequest.Method, pathAndQuery: String, headers: HTTPFields, body: ByteBuffer?,
                 credentials: [UsableCredential], requestID: String, loop: (any EventLoop)?) async throws -> UpstreamResponse {
        guard !credentials.isEmpty else {
            throw ProxyError.upstream(.badGateway, "No active Mistral credential is configured for this key's team.")
        }
        let order = health.preferHealthy(Self.weightedOrder(credentials))
        let started = ContinuousClock.now
        let deadline = NIODeadline.now() + .nanoseconds(Int64(totalTimeout.components.seconds) * 1_000_000_000)
        var lastFailure = "no attempt made"
        // The client whose connections live on the loop serving the caller: no thread crossing.
        let client = clients.client(on: loop)
        for attempt in 0..<maxAttempts {
            let credential = order[attempt % order.count]
            var request = HTTPClientRequest(url: credential.baseURL + pathAndQuery)
            request.method = HTTPMethod(rawValue: method.rawValue)
            for name in Self.forwardedHeaders {
                if let value = headers[name] { request.headers.add(name: name.rawName, value: value) }
            }
            request.headers.replaceOrAdd(name: "x-request-id", value: requestID)
            request.headers.add(name: "Authorization", value: "Bearer \(credential.secret)")
            if let body { request.body = .bytes(body) }
            let isLast = attempt == maxAttempts - 1
            do {
                // The head must arrive within the first-byte timeout (and the total timeout). The
                // HTTP client's deadline covers exactly the wait for the response head, on a cheap
                // event-loop timer; the attempt is cancelled when it passes.
                let headDeadline = min(deadline, .now() + .nanoseconds(firstByteTimeout.nanoseconds))
                // No logger: the client's own per-request debug metadata costs two writes a request.
                let response = try await client.execute(request, deadline: headDeadline, logger: nil)
                let status = Int(response.status.code)
                if Self.retriableStatuses.contains(status), !isLast {
                    let wait = Self.backoff(attempt: attempt, retryAfter: response.headers.first(name: "retry-after"))
                    lastFailure = "HTTP \(status)"
                    logger.info("upstream retriable status", metadata: [
                        "request_id": "\(requestID)", "status": "\(status)", "attempt": "\(attempt + 1)"])
                    try? await Self.drain(response.body)
                    try await Task.sleep(for: wait)
                    continue
                }
                // Only streams get the idle timer between chunks: a JSON body arrives all at once
                // after the head, and timing each of its reads cost a task and a timer per read
                // (measured: it doubled the proxy's CPU per request). The HTTP client's read timeout
                // still bounds a stalled JSON body.
                let streaming = response.headers.first(name: "content-type")?.hasPrefix("text/event-stream") ?? false
                return UpstreamResponse(status: status, headers: response.headers,
                                        body: UpstreamBody(base: response.body, idleTimeout: streaming ? idleTimeout : nil),
                                        credentialID: credential.id, attempts: attempt + 1,
                                        firstByteLatency: ContinuousClock.now - started)
            } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
                throw ProxyError.upstream(.gatewayTimeout, "Mistral did not answer in time.")
            } catch is CancellationError {
                throw CancellationError()
            } catch where !Self.failedBeforeSending(error) {
                // The connection broke after the request may have reached Mistral: retrying could
                // make Mistral run (and bill) it twice, so the client gets a 502 instead.
                logger.info("upstream connection lost after sending", metadata: [
                    "request_id": "\(requestID)", "error": "\(error)", "attempt": "\(attempt + 1)"])
                throw ProxyError.upstream(.badGateway, "The connection to Mistral was lost.")
            } catch {
                // Could not connect at all: nothing reached Mistral, so another credential may try.
                lastFailure = "\(type(of: error))"
                health.markFailed(credential.id)
                logger.info("upstream connection failed", metadata: [
                    "request_id": "\(requestID)", "error": "\(error)", "attempt": "\(attempt + 1)"])
                if isLast { break }
                try await Task.sleep(for: Self.backoff(attempt: attempt, retryAfter: nil))
            }
        }
        throw ProxyError.upstream(.badGateway, "Mistral could not be reached (\(lastFailure)).")
    }

    /// Whether `error` means the request never left this host (no connection was made).
    static func failedBeforeSending(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError {
            return error == .connectTimeout || error == .socksHandshakeTimeout || error == .tlsHandshakeTimeout
        }
        if error is NIOConnectionError { return true }
        if let error = error as? IOError {
            return [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EADDRNOTAVAIL].contains(error.errnoCode)
        }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        return false
    }

    /// Credentials in a weighted random order: heavier ones first more often, all of them tried.
    static func weightedOrder(_ credentials: [UsableCredential]) -> [UsableCredential] {
        guard credentials.count > 1 else { return credentials }
        var pool = credentials
        var order: [UsableCredential] = []
        while !pool.isEmpty {
            let total = pool.reduce(0) { $0 + max($1.weight, 1) }
            var pick = Int.random(in: 0..<total)
            let index = pool.firstIndex { pick -= max($0.weight, 1); return pick < 0 } ?? 0
            order.append(pool.remove(at: index))
        }
        return order
    }

    /// Exponential backoff with jitter; a server's Retry-After (seconds) wins, capped at 10 s.
    static func backoff(attempt: Int, retryAfter: String?) -> Duration {
        if let retryAfter, let seconds = Double(retryAfter.trimmingCharacters(in: .whitespaces)), seconds >= 0 {
            return .milliseconds(Int(min(seconds, 10) * 1000))
        }
        let base = min(200 * (1 << attempt), 5000)
        return .milliseconds(base + Int.random(in: 0...100))
    }

    static func drain(_ body: HTTPClientResponse.Body) async throws {
        for try await _ in body {}
    }
}

/// Mistral's response body. Streams (`idleTimeout` set) are read through a `StreamPump`: read
/// ahead in one task, handed over as everything received so far, and cut when Mistral sends
/// nothing for `idleTimeout` (`next()` then throws a 504 `ProxyError`, the pending read is
/// cancelled, which makes the HTTP client close the upstream connection, and the relay settles the
/// conservative estimate). Only time spent waiting for Mistral counts, never time spent waiting
/// for a slow client to take a chunk. Other bodies are read as the HTTP client yields them.
struct UpstreamBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let base: HTTPClientResponse.Body
    /// nil: no timer of our own (the HTTP client's read timeout only).
    let idleTimeout: Duration?

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base, idleTimeout: idleTimeout)
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        private var direct: HTTPClientResponse.Body.AsyncIterator?
        private let pump: PumpOwner?
        private var done = false

        init(base: HTTPClientResponse.Body, idleTimeout: Duration?) {
            if let idleTimeout {
                pump = PumpOwner(StreamPump(base: base, idleTimeout: idleTimeout,
                                            stalledError: UpstreamStalled.error(after: idleTimeout)))
                direct = nil
            } else {
                pump = nil
                direct = base.makeAsyncIterator()
            }
        }

        mutating func next() async throws -> ByteBuffer? {
            guard !done else { return nil }
            do {
                let chunk = if let pump { try await pump.pump.next() } else { try await direct?.next() }
                if chunk == nil { done = true }
                return chunk
            } catch {
                done = true
                throw error
            }
        }
    }

    /// Stops the pump's reader when the relay lets go of the body (a client that went away),
    /// which cancels the upstream request, as dropping the HTTP client's body does.
    private final class PumpOwner: Sendable {
        let pump: StreamPump<HTTPClientResponse.Body>
        init(_ pump: StreamPump<HTTPClientResponse.Body>) { self.pump = pump }
        deinit { pump.close() }
    }
}

/// The error an upstream body throws when Mistral stops sending mid-response.
enum UpstreamStalled {
    static func error(after limit: Duration) -> ProxyError {
        ProxyError.upstream(.gatewayTimeout, "Mistral sent nothing for \(limit.milliseconds) ms in the middle of its response.")
    }
}

/// Remembers credentials whose host could not be reached recently.
final class CredentialHealth: Sendable {
    private let failedUntil = Locked([UUID: ContinuousClock.Instant]())
    private let cooldown: Duration

    init(cooldown: Duration) { self.cooldown = cooldown }

    func markFailed(_ id: UUID) {
        let until = ContinuousClock.now + cooldown
        failedUntil.withLock { $0[id] = until }
    }

    /// Keeps the order, moving credentials in cooldown to the end.
    func preferHealthy(_ credentials: [UsableCredential]) -> [UsableCredential] {
        let now = ContinuousClock.now
        let failed = failedUntil.withLock { map in
            map = map.filter { $0.value > now }
            return Set(map.keys)
        }
        guard !failed.isEmpty else { return credentials }
        return credentials.filter { !failed.contains($0.id) } + credentials.filter { failed.contains($0.id) }
    }
}
