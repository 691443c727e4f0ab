import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

extension MockMistral {
    /// A Hummingbird application serving the mock. Use it with HummingbirdTesting
    /// (`try await app.test(.live) { client in … }`) or run it yourself.
    /// - Parameter onServerRunning: called with the bound port once listening (useful with port 0).
    public func buildApplication(
        host: String = "127.0.0.1",
        port: Int = 0,
        logger: Logger? = nil,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            responder: MockResponder(mock: self),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger ?? self.logger
        )
    }

    /// Starts the mock on `host:port` (port 0 picks a free one) and returns once it is listening.
    /// Call `stop()` when done; prefer `withRunningServer` where a scope fits.
    public func start(host: String = "127.0.0.1", port: Int = 0) async throws -> MockMistralServer {
        let bound = PortPromise()
        let app = buildApplication(host: host, port: port) { port in bound.fulfill(.success(port)) }
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], cancellationSignals: [], logger: logger)
        let task = Task {
            do {
                try await group.run()
                bound.fulfill(.failure(MockServerError.exitedBeforeListening))
            } catch {
                bound.fulfill(.failure(error))
            }
        }
        do {
            let actualPort = try await bound.value
            return MockMistralServer(host: host, port: actualPort, group: group, task: task)
        } catch {
            task.cancel()
            throw error
        }
    }

    /// Runs `body` with the mock listening, and stops it afterwards (also when `body` throws).
    public func withRunningServer<Result: Sendable>(
        host: String = "127.0.0.1",
        port: Int = 0,
        _ body: (MockMistralServer) async throws -> Result
    ) async throws -> Result {
        let server = try await start(host: host, port: port)
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }
}

public enum MockServerError: Error {
    case exitedBeforeListening
}

/// A running mock server.
public final class MockMistralServer: Sendable {
    public let host: String
    public let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, Never>

    init(host: String, port: Int, group: ServiceGroup, task: Task<Void, Never>) {
        self.host = host
        self.port = port
        self.group = group
        self.task = task
    }

    /// `http://127.0.0.1:PORT`: the root without `/v1`, i.e. what the Mistral SDK calls `server_url`.
    public var baseURL: String {
        host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
    }

    /// Graceful shutdown: stop accepting, let in-flight responses finish. Streams that would take
    /// longer than `timeout` are cut by cancelling the server task.
    public func stop(timeout: Duration = .seconds(5)) async {
        await group.triggerGracefulShutdown()
        let task = self.task
        await withTaskGroup(of: Bool.self) { waiters in
            waiters.addTask { await task.value; return true }
            waiters.addTask { try? await Task.sleep(for: timeout); return false }
            if await waiters.next() == false { task.cancel() }
            waiters.cancelAll()
        }
        await task.value
    }
}

/// One-shot hand-over of the bound port (or the startup error) from the server task.
private final class PortPromise: Sendable {
    private let state = NIOLockedValueBox<(result: Result<Int, any Error>?, waiter: CheckedContinuation<Int, any Error>?)>((nil, nil))

    func fulfill(_ result: Result<Int, any Error>) {
        let waiter: CheckedContinuation<Int, any Error>? = state.withLockedValue { state in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(with: result)
    }

    var value: Int {
        get async throws {
            try await withCheckedThrowingContinuation { continuation in
                let ready: Result<Int, any Error>? = state.withLockedValue { state in
                    if let result = state.result { return result }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        }
    }
}
