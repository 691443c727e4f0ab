// tollgate-client-probe: what the upstream HTTP client itself costs, measured against the mock with
// no proxy in between. Used by deploy/bench/run.sh (scenario "client").
//
// It sends the same POST four ways, in turns: through AsyncHTTPClient exactly as the proxy's
// Forwarder does (one client per event loop, async API, body read to the end); through
// AsyncHTTPClient's event-loop API with a response delegate (does the async bridging cost?);
// through a bare SwiftNIO HTTP/1.1 channel per connection (head, body and end in one flush), the
// floor any HTTP client on this stack could reach; and the same bare channel flushing the head
// alone first, as AsyncHTTPClient does (does the split write cost?). Prints one JSON object per
// measurement.
//
// Usage: [PROBE_ONLY=<client>] tollgate-client-probe PORT BODY_FILE KEY SECONDS CONNECTIONS...
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

// As in tollgate-proxy: async code runs on the event loops.
NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()

/// The command line, read once (static lets: safe to use from any task).
enum Setup {
    static let arguments = CommandLine.arguments
    static let valid = arguments.count >= 6 && Int(arguments[1]) != nil && Double(arguments[4]) != nil
        && FileManager.default.fileExists(atPath: arguments[2])
    static let port = Int(arguments[1]) ?? 0
    static let payload = ByteBuffer(bytes: FileManager.default.contents(atPath: arguments[2]) ?? Data())
    static let key = arguments[3]
    static let seconds = Double(arguments[4]) ?? 0
    static let connectionCounts = arguments.dropFirst(5).compactMap { Int($0) }
    static let url = "http://127.0.0.1:\(port)/v1/chat/completions"
    static let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
    /// As the proxy's `UpstreamClients`: one client per event loop.
    static let clients = loops.map { HTTPClient(eventLoopGroup: $0, configuration: .init()) }
}

guard Setup.valid else {
    FileHandle.standardError.write(Data("usage: tollgate-client-probe PORT BODY_FILE KEY SECONDS CONNECTIONS...\n".utf8))
    exit(2)
}

/// One bare HTTP/1.1 connection: one request at a time.
final class RawConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    private var promise: EventLoopPromise<Int>?
    private var status = 0
    private(set) var channel: (any Channel)!

    static func connect(on loop: any EventLoop) async throws -> RawConnection {
        let connection = RawConnection()
        connection.channel = try await ClientBootstrap(group: loop).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(connection)
            }
        }.connect(host: "127.0.0.1", port: Setup.port).get()
        return connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body: break
        case .end:
            let promise = self.promise
            self.promise = nil
            promise?.succeed(status)
        }
    }

    /// `split`: flush the head on its own first, as AsyncHTTPClient does, to price that alone.
    func post(split: Bool = false) async throws -> Int {
        try await channel.eventLoop.flatSubmit { [self] in
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: "127.0.0.1:\(Setup.port)")
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Authorization", value: "Bearer \(Setup.key)")
            headers.add(name: "Content-Length", value: "\(Setup.payload.readableBytes)")
            let promise = channel.eventLoop.makePromise(of: Int.self)
            self.promise = promise
            channel.write(HTTPClientRequestPart.head(.init(version: .http1_1, method: .POST, uri: "/v1/chat/completions", headers: headers)),
                          promise: nil)
            if split { channel.flush() }
            channel.write(HTTPClientRequestPart.body(.byteBuffer(Setup.payload)), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            return promise.futureResult
        }.get()
    }
}

@Sendable func viaAsyncHTTPClient(_ connection: Int) async throws -> Int {
    var request = HTTPClientRequest(url: Setup.url)
    request.method = .POST
    request.headers.add(name: "Content-Type", value: "application/json")
    request.headers.add(name: "Authorization", value: "Bearer \(Setup.key)")
    request.body = .bytes(Setup.payload)
    let response = try await Setup.clients[connection % Setup.clients.count].execute(request, deadline: .now() + .seconds(10), logger: nil)
    for try await _ in response.body {}
    return Int(response.status.code)
}

/// The same POST through AsyncHTTPClient's event-loop API: a response delegate instead of the async
/// `execute`, so no task, continuation or async body sequence per request. Still AsyncHTTPClient.
final class StatusDelegate: HTTPClientResponseDelegate {
    typealias Response = Int
    private var status = 0
    func didReceiveHead(task: HTTPClient.Task<Int>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        status = Int(head.status.code)
        return task.eventLoop.makeSucceededVoidFuture()
    }
    func didReceiveBodyPart(task: HTTPClient.Task<Int>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        task.eventLoop.makeSucceededVoidFuture()
    }
    func didFinishRequest(task: HTTPClient.Task<Int>) throws -> Int { status }
}

@Sendable func viaAsyncHTTPClientDelegate(_ connection: Int) async throws -> Int {
    var headers = HTTPHeaders()
    headers.add(name: "Content-Type", value: "application/json")
    headers.add(name: "Authorization", value: "Bearer \(Setup.key)")
    let request = try HTTPClient.Request(url: Setup.url, method: .POST, headers: headers, body: .byteBuffer(Setup.payload))
    let client = Setup.clients[connection % Setup.clients.count]
    return try await client.execute(request: request, delegate: StatusDelegate(), eventLoop: .delegate(on: client.eventLoopGroup.next()),
                                    deadline: .now() + .seconds(10), logger: nil).futureResult.get()
}

func processCPUMicroseconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

/// Runs `connections` request loops for `seconds`; prints latency percentiles, throughput and
/// this process's CPU per request.
func measure(_ client: String, connections: Int, _ send: @escaping @Sendable (Int) async throws -> Int) async throws {
    // PROBE_ONLY=<client>: run just that one (for profiling it alone).
    if let only = ProcessInfo.processInfo.environment["PROBE_ONLY"], only != client, client != "warmup" { return }
    let cpuBefore = processCPUMicroseconds()
    let started = ContinuousClock.now
    let end = started + .milliseconds(Int(Setup.seconds * 1000))
    let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
        for connection in 0..<connections {
            group.addTask {
                var samples: [Double] = []
                while ContinuousClock.now < end {
                    let sent = ContinuousClock.now
                    let status = try await send(connection)
                    guard status == 200 else { throw HTTPClientError.invalidURL }  // the mock must answer 200
                    samples.append(milliseconds(ContinuousClock.now - sent))
                }
                return samples
            }
        }
        var all: [Double] = []
        for try await samples in group { all += samples }
        return all.sorted()
    }
    guard !latencies.isEmpty else {
        FileHandle.standardError.write(Data("tollgate-client-probe: no request completed in \(Setup.seconds) s\n".utf8))
        exit(1)
    }
    let wall = milliseconds(ContinuousClock.now - started) / 1000
    let result: [String: Any] = [
        "client": client, "connections": connections, "requests": latencies.count,
        "req_per_s": Double(latencies.count) / wall,
        "p50_ms": latencies[latencies.count / 2], "p99_ms": latencies[latencies.count * 99 / 100],
        "client_cpu_us_per_req": (processCPUMicroseconds() - cpuBefore) / Double(latencies.count),
    ]
    print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
}

do {
    for connections in Setup.connectionCounts {
        var raw: [RawConnection] = []
        for index in 0..<connections { raw.append(try await RawConnection.connect(on: Setup.loops[index % Setup.loops.count])) }
        let connectionsForRaw = raw
        // Warm both up, then alternate, twice each, so neither gets the quieter moment.
        try await measure("warmup", connections: connections) { try await viaAsyncHTTPClient($0) }
        for _ in 0..<2 {
            try await measure("async-http-client", connections: connections) { try await viaAsyncHTTPClient($0) }
            try await measure("async-http-client-delegate", connections: connections) { try await viaAsyncHTTPClientDelegate($0) }
            try await measure("nio-bare", connections: connections) { try await connectionsForRaw[$0].post() }
            try await measure("nio-bare-head-flushed-alone", connections: connections) { try await connectionsForRaw[$0].post(split: true) }
        }
        for connection in raw { try? await connection.channel.close().get() }
    }
    for client in Setup.clients { try await client.shutdown().get() }
} catch {
    FileHandle.standardError.write(Data("tollgate-client-probe failed: \(error)\n".utf8))
    exit(1)
}
