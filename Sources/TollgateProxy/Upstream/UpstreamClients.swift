import AsyncHTTPClient
import NIOCore
import NIOPosix

/// The HTTP clients the proxy forwards with: one per event loop, each keeping its upstream
/// connections on its own loop.
///
/// Why: AsyncHTTPClient's async API cannot be told which loop a request should run on; a request
/// takes whichever pooled connection is idle, on any loop. A proxied request then crosses threads
/// from the client's connection to the upstream connection and back, and every crossing is a
/// thread wake-up. Forwarding with the client of the loop that serves the incoming connection keeps
/// the upstream exchange, the body chunks and the writes back to the caller on that one thread.
public final class UpstreamClients: Sendable {
    private let byLoop: [ObjectIdentifier: HTTPClient]
    private let fallback: HTTPClient

    /// One client per loop of `group`, each with `configuration`; the connection cap is shared
    /// out between them so the total stays `configuration`'s.
    public init(configuration: HTTPClient.Configuration, group: MultiThreadedEventLoopGroup = .singleton) {
        let loops = Array(group.makeIterator())
        var configuration = configuration
        let total = configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(1, total / max(1, loops.count))
        var clients: [ObjectIdentifier: HTTPClient] = [:]
        for loop in loops {
            // An event loop is an event-loop group of one.
            clients[ObjectIdentifier(loop)] = HTTPClient(eventLoopGroup: loop, configuration: configuration)
        }
        self.byLoop = clients
        self.fallback = clients[ObjectIdentifier(loops[0])]!
    }

    /// The client whose connections live on `loop` (any client when `loop` is not one of ours).
    func client(on loop: (any EventLoop)?) -> HTTPClient {
        guard let loop else { return fallback }
        return byLoop[ObjectIdentifier(loop)] ?? fallback
    }

    public func shutdown() async throws {
        for client in byLoop.values { try await client.shutdown() }
    }
}
