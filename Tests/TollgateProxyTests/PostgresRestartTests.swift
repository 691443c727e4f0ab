import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing
import TollgateDomain
import TollgateStorage
import TollgateTestSupport

/// The real thing behind `databaseOutageFailsClosedAndSettlesLater` (which takes one database away
/// with ALLOW_CONNECTIONS): the proxy's own Postgres server stopped with `pg_ctl -m fast stop` under
/// sustained load, started again on the same port and data directory, load continuing.
@Suite("Postgres restart under load")
struct PostgresRestartTests {
    /// Statuses of requests begun and answered while the database was down: refused, but for at
    /// most one pool of admission tickets (TicketedAdmissionGate.Policy.maxPoolSize) taken before.
    static func expectRefusedUnlessOnTickets(_ statuses: [Int]) {
        let admitted = statuses.filter { $0 != 503 }
        #expect(admitted.count <= 256, "\(statuses)")
        #expect(admitted.count < statuses.count, "\(statuses)")
    }

    static let plainBody = Data(#"{"model":"mistral-small-latest","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#.utf8)
    static let streamBody = Data(#"{"model":"mistral-small-latest","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#.utf8)

    struct Outcome: Sendable {
        let started: ContinuousClock.Instant
        let finished: ContinuousClock.Instant
        let streaming: Bool
        let status: Int
        let requestID: String?
        let retryAfter: String?
        let body: String
    }

    /// What the load clients saw, and the moments that split the run into before / down / after.
    final class Run: Sendable {
        private let state = NIOLockedValueBox((outcomes: [Outcome](), failures: [String](), stop: false))
        let clock = ContinuousClock()

        func record(_ outcome: Outcome) { state.withLockedValue { $0.outcomes.append(outcome) } }
        func fail(_ error: String) { state.withLockedValue { $0.failures.append(error) } }
        func halt() { state.withLockedValue { $0.stop = true } }
        var stopped: Bool { state.withLockedValue { $0.stop } }
        var outcomes: [Outcome] { state.withLockedValue { $0.outcomes } }
        var failures: [String] { state.withLockedValue { $0.failures } }
    }

    @Test func stopAndStartUnderLoadFailsClosedAndSettlesEverythingOnce() async throws {
        let postgres = TestPostgres.dedicated()
        do {
            try await runScenario(postgres)
        } catch {
            await postgres.destroy()
            throw error
        }
        await postgres.destroy()
    }

    private func runScenario(_ postgres: TestPostgres) async throws {
        let budget = Budget(limit: Money(nanos: 1_000_000_000_000), period: .daily)
        try await ProxyHarness.run(KeyOptions(budget: budget, tenantBudget: budget), poolSize: 24, postgres: postgres) { h in
            // Short streams, so streaming and plain requests both cycle quickly; a log large enough
            // to keep every request of the run.
            h.mock.updateConfiguration { $0.streamChunkDelay = .milliseconds(5); $0.completionTokens = 12; $0.requestLogCapacity = 1_000_000 }
            let port = try #require(h.client.port)
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 32
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            let run = Run()
            let load = Task { await Self.load(clients: 16, port: port, key: h.seed.secret, http: http, run: run) }

            // Load, then the database goes away, then comes back. The proxy gives a database call 3 s
            // before it answers 503, so the outage lasts 7 s: requests in flight when it began are
            // answered within it, and the next ones begin and end within it too.
            // (Load runs until 32 requests, streams among them, have been answered: however busy the
            // machine, the database goes away under load.)
            let warmUpLimit = run.clock.now + .seconds(20)
            while run.clock.now < warmUpLimit {
                let answered = run.outcomes.filter { $0.status == 200 }
                if answered.count >= 32 && answered.contains(where: \.streaming) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let warmedUp = run.clock.now
            try await postgres.stop()
            let down = run.clock.now
            try await Task.sleep(for: .seconds(7))
            let restarting = run.clock.now
            try await postgres.start()
            let up = run.clock.now
            // Load continues until requests begun after the restart succeed again (the pool backs off
            // while the server is away), at most 15 s.
            let recoveryLimit = up + .seconds(15)
            while run.outcomes.filter({ $0.started > up && $0.status == 200 }).count < 32, run.clock.now < recoveryLimit {
                try await Task.sleep(for: .milliseconds(50))
            }
            run.halt()
            await load.value
            try await http.shutdown().get()

            let outcomes = run.outcomes
            let refused = outcomes.filter { $0.status == 503 }
            #expect(run.failures.isEmpty, "every request got an HTTP answer: \(run.failures.prefix(3))")
            #expect(Set(outcomes.map(\.status)).isSubset(of: [200, 503]), "\(Dictionary(grouping: outcomes, by: \.status).mapValues(\.count))")
            #expect(outcomes.filter { $0.finished <= warmedUp && $0.status == 200 }.count >= 32, "load before the outage")
            #expect(outcomes.contains { $0.finished <= warmedUp && $0.streaming && $0.status == 200 }, "streams among the load")
            #expect(outcomes.filter { $0.started > up && $0.status == 200 }.count >= 32, "service resumed after the restart")

            // While the server was down, nothing could be reserved: a request begun and answered
            // within the outage was refused, unless it took one of the admission tickets (holds
            // already durable) this replica had pooled before.
            let withinOutage = outcomes.filter { $0.started >= down && $0.finished <= restarting }
            #expect(!withinOutage.isEmpty, "requests begun and answered while the database was down")
            Self.expectRefusedUnlessOnTickets(withinOutage.map(\.status))
            // Every refusal: 503 with Retry-After in Mistral's error envelope.
            #expect(!refused.isEmpty)
            for outcome in refused {
                #expect(outcome.retryAfter != nil)
                let json = (try? JSONSerialization.jsonObject(with: Data(outcome.body.utf8))) as? [String: Any] ?? [:]
                #expect(json["object"] as? String == "error", "\(outcome.body)")
                #expect(json["code"] as? String == "gateway_unavailable")
                #expect(json["type"] as? String == "service_unavailable")
                #expect(json.keys.contains("message") && json.keys.contains("param"))
            }

            // The mock's log against the clients' answers: no refused request was forwarded, every
            // answered one was (once).
            let forwarded = h.mock.requestLog.entries.compactMap { $0.header("x-request-id") }
            #expect(forwarded.count == h.mock.stats.requestsTotal, "the log kept every request")
            #expect(Set(forwarded).count == forwarded.count, "no request forwarded twice")
            let forwardedIDs = Set(forwarded)
            #expect(refused.allSatisfy { $0.requestID.map { !forwardedIDs.contains($0) } ?? false }, "a refused request was forwarded")
            let answered = outcomes.filter { $0.status == 200 }
            #expect(answered.allSatisfy { $0.requestID.map(forwardedIDs.contains) ?? false })

            // Every forwarded request settles exactly once; nothing stays reserved; spend is the ledger.
            let rows = try await h.settled(expectedRows: forwarded.count, timeout: .seconds(30))
            let ledger = Dictionary(grouping: rows, by: { $0.requestID.uuidString.lowercased() })
            #expect(ledger.values.allSatisfy { $0.count == 1 }, "one ledger row per request")
            let unsettled = forwardedIDs.subtracting(ledger.keys)
            #expect(unsettled.isEmpty, "forwarded but not settled: \(unsettled.count)")
            // Rows of requests that were admitted but never forwarded (the database went away between
            // reserving and looking up the credential): settled at nothing.
            let notForwarded = rows.filter { !forwardedIDs.contains($0.requestID.uuidString.lowercased()) }
            #expect(notForwarded.allSatisfy { $0.costNanos == 0 }, "\(notForwarded)")
            #expect(try await holdCount(h) == 0, "no hold left")
            let spent = rows.reduce(Int64(0)) { $0 + $1.costNanos }
            for owner in [h.seed.keyID, h.seed.tenantID] {
                let window = try await h.budgetWindow(owner: owner)
                #expect(window.reserved == 0)
                #expect(window.spent == spent)
            }
        }
    }

    /// `clients` loops, each sending one request after another (every third one streamed) until
    /// the run is halted.
    static func load(clients: Int, port: Int, key: String, http: HTTPClient, run: Run) async {
        await withTaskGroup(of: Void.self) { group in
            for client in 0..<clients {
                group.addTask {
                    var sent = 0
                    while !run.stopped {
                        sent += 1
                        let streaming = (client + sent) % 3 == 0
                        let started = run.clock.now
                        do {
                            let response = try await http.execute(
                                chatRequest(port: port, key: key, body: streaming ? streamBody : plainBody), timeout: .seconds(30))
                            let body = try await response.body.collect(upTo: 1 << 20)
                            run.record(Outcome(started: started, finished: run.clock.now, streaming: streaming,
                                               status: Int(response.status.code), requestID: response.headers.first(name: "x-request-id"),
                                               retryAfter: response.headers.first(name: "retry-after"), body: String(buffer: body)))
                        } catch {
                            run.fail("\(error)")
                        }
                    }
                }
            }
        }
    }

    func holdCount(_ h: ProxyHarness) async throws -> Int {
        try await h.database.read { db in
            var n = 0
            for try await c in try await db.query("SELECT count(*)::int FROM holds", logger: h.database.logger).decode(Int.self) { n = c }
            return n
        }
    }
}
