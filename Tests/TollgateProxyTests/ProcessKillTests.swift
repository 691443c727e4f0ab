import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import MockMistral
import NIOCore
import PostgresNIO
import Testing
import TollgateDomain
import TollgateStorage
import TollgateTestSupport

/// A real `tollgate-proxy` process is killed with SIGKILL while a stream is in flight: its hold
/// survives it, and another replica's reaper settles it once, at the reserved amount, marked estimated.
@Suite("Real proxy processes: SIGKILL and SIGTERM mid-stream")
struct ProcessKillTests {
    static let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/tollgate-proxy")

    @Test(.timeLimit(.minutes(2)))
    func killedProxyHoldIsReapedExactlyOnce() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path),
                     "build the products first (swift build --build-tests builds tollgate-proxy)")
        let mock = MockMistral(configuration: .init(acceptedKeys: [upstreamSecret]))
        mock.updateConfiguration { $0.streamChunkDelay = .milliseconds(50); $0.completionTokens = 200 }
        try await mock.withRunningServer { server in
            let testDatabase = try await TestPostgres.shared.makeDatabase(template: try await TestPostgres.shared.migratedTemplate())
            let logger = Logger(label: "kill-test")
            let postgres = PostgresClient(configuration: testDatabase.configuration, backgroundLogger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await postgres.run() }
                defer { group.cancelAll() }
                let database = Database(client: postgres, logger: logger)
                let seed = try await ProxyHarness.seed(database: database, upstream: server.baseURL, options: KeyOptions(
                    budget: Budget(limit: Money(nanos: 1_000_000_000), period: .monthly)))
                let (process, work) = try Self.spawnProxy(databaseURL: testDatabase.url, proxyID: "doomed", totalTimeoutSeconds: 2)
                defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
                let log = work.appendingPathComponent("proxy.log")
                let port = try await Self.listeningPort(log: log)
                let http = HTTPClient.shared  // process-wide; never shut down, so an early throw cannot leak it
                let response = try await http.execute(Self.chatStream(port: port, key: seed.secret), timeout: .seconds(10))
                #expect(response.status == .ok)
                var iterator = response.body.makeAsyncIterator()
                _ = try await iterator.next()  // the stream is flowing: the hold is committed

                kill(process.processIdentifier, SIGKILL)
                // Polled rather than waitUntilExit(), which would hold one of the few threads
                // every parallel test runs on.
                for _ in 0..<500 where process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
                try #require(!process.isRunning, "the proxy was still running 10 s after SIGKILL")
                _ = try? await iterator.next()

                // The dead proxy's hold is still there, reserving budget.
                let holdAmount = try await Self.single(database, "SELECT amount_nanos FROM holds WHERE proxy_id = 'doomed'")
                #expect(holdAmount > 0)
                // Another replica's reaper (several, concurrently) settles it once the hold expires.
                let store = SettlementStore(logger: logger)
                var reaped = 0
                for _ in 0..<100 where reaped == 0 {
                    try await Task.sleep(for: .milliseconds(100))
                    async let a = database.read { try await store.reapExpiredHolds(limit: 10, on: $0) }
                    async let b = database.read { try await store.reapExpiredHolds(limit: 10, on: $0) }
                    reaped = try await a + b
                }
                #expect(reaped == 1)
                #expect(try await Self.single(database, "SELECT count(*) FROM holds") == 0)
                #expect(try await Self.single(database, "SELECT count(*) FROM usage_ledger") == 1)
                #expect(try await Self.single(database, "SELECT cost_nanos FROM usage_ledger WHERE estimated") == holdAmount)
                #expect(try await Self.single(database,
                    "SELECT reserved_nanos FROM budget_windows WHERE owner_id = '\(seed.keyID.uuidString)'") == 0)
                try? FileManager.default.removeItem(at: work)
            }
        }
    }

    /// Starts a real `tollgate-proxy` on a free port against `databaseURL`, logging to a file in a
    /// fresh work directory (which also holds its journal).
    static func spawnProxy(databaseURL: String, proxyID: String, totalTimeoutSeconds: Int,
                           environment extra: [String: String] = [:]) throws -> (Process, URL) {
        let work = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("tg-proc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let log = work.appendingPathComponent("proxy.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = binary
        process.environment = [
            "DATABASE_URL": databaseURL + "?sslmode=disable",
            "TOLLGATE_MASTER_KEYS": "1:" + Data(SHA256.hash(data: Data("proxy keyring".utf8))).base64EncodedString(),
            "TOLLGATE_KEY_PEPPER": Data(SHA256.hash(data: Data("proxy pepper".utf8))).base64EncodedString(),
            "TOLLGATE_PROXY_PORT": "0", "TOLLGATE_JOURNAL_DIR": work.path, "TOLLGATE_PROXY_ID": proxyID,
            "TOLLGATE_UPSTREAM_TOTAL_TIMEOUT_SECONDS": "\(totalTimeoutSeconds)", "TOLLGATE_HOLD_GRACE_SECONDS": "1",
            "LOG_FORMAT": "text", "LOG_LEVEL": "info", "TOLLGATE_DATABASE_POOL_SIZE": "4",
        ].merging(extra) { $1 }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        return (process, work)
    }

    static func chatStream(port: Int, key: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string:
            #"{"model":"mistral-small-latest","stream":true,"max_tokens":200,"messages":[{"role":"user","content":"go"}]}"#))
        return request
    }

    /// SIGTERM mid-stream: the proxy stops accepting, lets the stream finish, flushes its
    /// settlement, gives its unused admission tickets back, and exits 0. The request is charged its
    /// real usage, not an estimate.
    @Test(.timeLimit(.minutes(2)))
    func gracefulShutdownFinishesStreamsAndFlushesSettlements() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary.path),
                     "build the products first (swift build --build-tests builds tollgate-proxy)")
        let mock = MockMistral(configuration: .init(acceptedKeys: [upstreamSecret]))
        mock.updateConfiguration { $0.streamChunkDelay = .milliseconds(40); $0.completionTokens = 30 }
        try await mock.withRunningServer { server in
            let testDatabase = try await TestPostgres.shared.makeDatabase(template: try await TestPostgres.shared.migratedTemplate())
            let logger = Logger(label: "shutdown-test")
            let postgres = PostgresClient(configuration: testDatabase.configuration, backgroundLogger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await postgres.run() }
                defer { group.cancelAll() }
                let database = Database(client: postgres, logger: logger)
                let seed = try await ProxyHarness.seed(database: database, upstream: server.baseURL, options: KeyOptions())
                // Tickets are kept while the key is idle, so only shutdown can give them back in time.
                let (process, work) = try Self.spawnProxy(databaseURL: testDatabase.url, proxyID: "leaving", totalTimeoutSeconds: 30,
                                                          environment: ["TOLLGATE_ADMISSION_TICKET_IDLE_MS": "60000"])
                defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
                let port = try await Self.listeningPort(log: work.appendingPathComponent("proxy.log"))
                let http = HTTPClient.shared  // process-wide; never shut down, so an early throw cannot leak it
                // Two requests: the key is in use and gets a pool of tickets.
                for _ in 0..<2 {
                    let plain = try await http.execute(Self.chatStream(port: port, key: seed.secret), timeout: .seconds(20))
                    _ = try await plain.body.collect(upTo: 1 << 20)
                }
                var pooled: Int64 = 0
                for _ in 0..<100 where pooled == 0 {
                    pooled = try await Self.single(database, "SELECT count(*) FROM holds WHERE ticket")
                    if pooled == 0 { try await Task.sleep(for: .milliseconds(50)) }
                }
                #expect(pooled > 0, "tickets were granted")
                let response = try await http.execute(Self.chatStream(port: port, key: seed.secret), timeout: .seconds(20))
                var iterator = response.body.makeAsyncIterator()
                var received = ByteBuffer()
                if var first = try await iterator.next() { received.writeBuffer(&first) }

                kill(process.processIdentifier, SIGTERM)
                while var chunk = try await iterator.next() { received.writeBuffer(&chunk) }
                #expect(String(buffer: received).hasSuffix("data: [DONE]\n\n"), "the stream in flight completes")

                for _ in 0..<100 where process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
                #expect(!process.isRunning)
                #expect(process.terminationStatus == 0)
                #expect(try await Self.single(database, "SELECT count(*) FROM holds") == 0)
                #expect(try await Self.single(database, "SELECT count(*) FROM usage_ledger WHERE NOT estimated AND completion_tokens = 30") == 3)
                let reserved = try await Self.single(database, "SELECT coalesce(sum(reserved_nanos), 0)::bigint FROM budget_windows")
                #expect(reserved == 0)
                try? FileManager.default.removeItem(at: work)
            }
        }
    }

    /// Hummingbird logs "Server started and listening on 127.0.0.1:PORT" once bound.
    static func listeningPort(log: URL) async throws -> Int {
        for _ in 0..<300 {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let range = text.range(of: "listening on 127.0.0.1:") {
                let digits = text[range.upperBound...].prefix { $0.isNumber }
                if let port = Int(digits), port > 0 { return port }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw CancellationError()
    }

    static func single(_ database: Database, _ sql: String) async throws -> Int64 {
        try await database.read { db in
            var value: Int64 = -1
            for try await v in try await db.query(PostgresQuery(unsafeSQL: sql), logger: database.logger).decode(Int64.self) { value = v }
            return value
        }
    }
}
