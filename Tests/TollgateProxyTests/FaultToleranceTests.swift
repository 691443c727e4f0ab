import AsyncHTTPClient
import Foundation
import Logging
import MockMistral
import NIOCore
import PostgresNIO
import Testing
import TollgateDomain
import TollgateStorage
import TollgateTestSupport

/// Every request the mock received ends with exactly one settled ledger row; nothing is charged
/// twice and nothing stays reserved, whatever fails.
@Suite("Fault tolerance")
struct FaultToleranceTests {
    static let streamBody = Data(#"{"model":"mistral-small-latest","stream":true,"max_tokens":400,"messages":[{"role":"user","content":"Tell me a story."}]}"#.utf8)

    func request(port: Int, key: String, body: Data) -> HTTPClientRequest {
        chatRequest(port: port, key: key, body: body)
    }

    /// Hanging up at several points of a stream: each request settles exactly once, estimated, and
    /// nothing stays reserved.
    @Test(arguments: [1, 150, 700, 1500])
    func clientDisconnectAtAnyPointSettlesOnce(afterBytes: Int) async throws {
        try await ProxyHarness.run(KeyOptions(budget: Budget(limit: Money(nanos: 1_000_000_000), period: .daily))) { h in
            h.mock.updateConfiguration { $0.streamChunkDelay = .milliseconds(10); $0.completionTokens = 100; $0.tokensPerChunk = 1 }
            let port = try #require(h.client.port)
            let http = HTTPClient.shared  // process-wide; never shut down, so an early throw cannot leak it
            let response = try await http.execute(request(port: port, key: h.seed.secret, body: Self.streamBody), timeout: .seconds(30))
            var received = 0
            for try await chunk in response.body {
                received += chunk.readableBytes
                if received >= afterBytes { break }
            }
            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.count == 1)
            #expect(rows.first?.estimated == true)
            let window = try await h.budgetWindow(owner: h.seed.keyID)
            #expect(window.reserved == 0)
            #expect(window.spent == rows.first?.costNanos)
        }
    }

    @Test func clientDisconnectMidStreamSettlesAnEstimateOfWhatWasDelivered() async throws {
        try await ProxyHarness.run { h in
            // 100 tokens at 2 per 20 ms chunk: the mock's whole stream takes about one second.
            h.mock.updateConfiguration { $0.streamChunkDelay = .milliseconds(20); $0.completionTokens = 100; $0.tokensPerChunk = 2 }
            let port = try #require(h.client.port)
            let http = HTTPClient.shared  // process-wide; never shut down, so an early throw cannot leak it
            let response = try await http.execute(request(port: port, key: h.seed.secret, body: Self.streamBody), timeout: .seconds(30))
            #expect(response.status == .ok)
            var received = 0
            for try await chunk in response.body {
                received += chunk.readableBytes
                if received > 300 { break }  // hang up mid-stream
            }
            let rows = try await h.settled(expectedRows: 1)
            let row = try #require(rows.first)
            #expect(row.estimated)
            // At most one token per delivered byte (a conservative bound, which may exceed the
            // real count), never the whole hold.
            #expect(row.completionTokens > 0)
            #expect(row.completionTokens < 400, "an estimate of what was delivered, not the whole hold")
            #expect(row.statusCode == 499)
            let window = try await h.budgetWindow(owner: h.seed.keyID)
            #expect(window.reserved == 0)
            // The upstream request was cancelled with the client: the mock never finished its stream,
            // which it would have within about a second otherwise.
            try await Task.sleep(for: .milliseconds(1500))
            #expect(h.mock.stats.streamsStarted == 1)
            #expect(h.mock.stats.streamsCompleted == 0)
        }
    }

    @Test(arguments: [Fault.streamWithoutUsage, .disconnectMidStream(afterChunks: 3)])
    func truncatedUpstreamStreamSettlesTheConservativeEstimate(fault: Fault) async throws {
        try await ProxyHarness.run { h in
            h.mock.inject(fault, matching: "/v1/chat/completions")
            let port = try #require(h.client.port)
            let http = HTTPClient.shared  // process-wide; never shut down, so an early throw cannot leak it
            let response = try await http.execute(request(port: port, key: h.seed.secret, body: Self.streamBody), timeout: .seconds(30))
            _ = try? await response.body.collect(upTo: 1 << 22)
            let rows = try await h.settled(expectedRows: 1)
            let row = try #require(rows.first)
            #expect(row.estimated)
            #expect(row.completionTokens == 400, "the whole hold: max_tokens")
        }
    }

    @Test func failoverAcrossCredentialsWhenOneCannotBeReached() async throws {
        // Port 9 (discard) on loopback refuses connections here.
        try await ProxyHarness.run(KeyOptions(extraCredentialURL: "http://127.0.0.1:9"),
                                   configure: { $0.connectTimeout = .seconds(1) }) { h in
            for _ in 0..<8 {
                let reply = try await h.post("/v1/chat/completions", chatBody)
                #expect(reply.status == .ok, "\(reply.body)")
            }
            let rows = try await h.settled(expectedRows: 8)
            #expect(rows.count == 8)
            #expect(Set(rows.map(\.requestID)).count == 8)
            #expect(h.mock.requestLog.count == 8, "one upstream call per request reached the mock")
        }
    }

    /// A connection reset after Mistral received the request is not retried: a retry could make
    /// Mistral run and bill it twice. The client gets a 502; the ledger records one request at 0.
    @Test func resetAfterSendingIsNotRetried() async throws {
        try await ProxyHarness.run { h in
            h.mock.inject(.resetBeforeHeaders, count: 1, matching: "/v1/chat/completions")
            let reply = try await h.post("/v1/chat/completions", chatBody)
            #expect(reply.status == .badGateway, "\(reply.body)")
            #expect(h.mock.requestLog.count == 1, "exactly one upstream attempt")
            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.map(\.costNanos) == [0])
        }
    }

    @Test func persistentUpstreamFailureIsPassedThroughAndCostsNothing() async throws {
        try await ProxyHarness.run { h in
            h.mock.inject(.serverError(status: 503), count: 3, matching: "/v1/chat/completions")
            let reply = try await h.post("/v1/chat/completions", chatBody)
            #expect(reply.status.code == 503)
            #expect(h.mock.requestLog.count == 3, "three attempts")
            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.map(\.costNanos) == [0])
        }
    }

    /// A proxy that dies with holds in flight (simulated: holds whose TTL passed) is cleaned up by
    /// any replica's reaper, at the reserved amount, marked estimated.
    @Test func reaperSettlesHoldsOfADeadProxy() async throws {
        try await ProxyHarness.run(configure: { $0.reaperInterval = .milliseconds(200) }) { h in
            let requestID = UUID()
            let outcome = try await h.database.read { db in
                try await AdmissionStore(logger: h.database.logger).reserve(ReservationRequest(
                    requestID: requestID, keyID: h.seed.keyID, hold: Money(nanos: 12_345), tokens: 100, proxyID: "dead-proxy",
                    ttlSeconds: 0, endpoint: "chat", model: "mistral-small-latest", metadataJSON: nil, traceparent: nil), on: db)
            }
            #expect(outcome == .admitted(remainingRequests: nil, remainingTokens: nil))
            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.first?.requestID == requestID)
            #expect(rows.first?.costNanos == 12_345)
            #expect(rows.first?.estimated == true)
        }
    }

    /// Postgres unreachable: new requests fail closed (503 + Retry-After, nothing forwarded);
    /// requests already admitted finish, their settlements wait in the journal and land once the
    /// database is back.
    @Test func databaseOutageFailsClosedAndSettlesLater() async throws {
        try await ProxyHarness.run { h in
            // Long enough that all five are still in flight when the database goes away.
            h.mock.updateConfiguration { $0.latency = .seconds(3) }
            let port = try #require(h.client.port)
            let http = HTTPClient.shared  // process-wide; never shut down, so an early throw cannot leak it
            let body = Data(#"{"model":"mistral-small-latest","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#.utf8)
            let inFlight = Task {
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<5 {
                        group.addTask {
                            let response = try await http.execute(request(port: port, key: h.seed.secret, body: body), timeout: .seconds(30))
                            _ = try await response.body.collect(upTo: 1 << 20)
                            return Int(response.status.code)
                        }
                    }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
            }
            // Wait until all five are admitted (holds exist), then cut the database off.
            for _ in 0..<500 {
                if try await holdCount(h) == 5 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(try await holdCount(h) == 5)
            try await setConnections(allowed: false, database: h.databaseName)
            do {
                try await duringOutage(h, http: http, port: port, body: body, inFlight: inFlight)
            } catch {
                try await setConnections(allowed: true, database: h.databaseName)
                throw error
            }
            try await setConnections(allowed: true, database: h.databaseName)
            let rows = try await h.settled(expectedRows: 5, timeout: .seconds(60))
            #expect(rows.count == 5)
            #expect(h.mock.requestLog.count == 5, "the refused request was never forwarded")
        }
    }

    private func duringOutage(_ h: ProxyHarness, http: HTTPClient, port: Int, body: Data,
                              inFlight: Task<[Int], any Error>) async throws {
            let refused = try await http.execute(request(port: port, key: h.seed.secret, body: body), timeout: .seconds(30))
            _ = try await refused.body.collect(upTo: 1 << 20)
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.headers.first(name: "retry-after") != nil)
            let statuses = try await inFlight.value
            #expect(statuses == [200, 200, 200, 200, 200])
            // The five settlements wait in the fsync'd journal while the database is away (written by
            // the drain loop just after the responses, so poll briefly). The refused request's
            // zero-cost release (status 503) is journaled too.
            let journalFile = try #require(try FileManager.default.contentsOfDirectory(atPath: h.journalDirectory).first)
            var journaled = 0
            for _ in 0..<250 {
                let journal = try String(contentsOfFile: h.journalDirectory + "/" + journalFile, encoding: .utf8)
                journaled = journal.split(separator: "\n").filter { $0.hasPrefix("S ") && $0.contains(#""statusCode":200"#) }.count
                if journaled == 5 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(journaled == 5)
    }

    func holdCount(_ h: ProxyHarness) async throws -> Int {
        try await h.database.read { db in
            var n = 0
            for try await c in try await db.query("SELECT count(*)::int FROM holds", logger: h.database.logger).decode(Int.self) { n = c }
            return n
        }
    }

    /// Simulates an outage of one test database only: refuse new connections and end current ones.
    func setConnections(allowed: Bool, database: String) async throws {
        let admin = try await TestPostgres.shared.makeDatabase()
        var configuration = admin.configuration
        configuration.database = "postgres"
        let client = PostgresClient(configuration: configuration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            let logger = Logger(label: "outage")
            try await client.query("ALTER DATABASE \(unescaped: "\"\(database)\"") ALLOW_CONNECTIONS \(unescaped: allowed ? "true" : "false")",
                                   logger: logger)
            if !allowed {
                try await client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(database)", logger: logger)
            }
            group.cancelAll()
        }
    }
}
