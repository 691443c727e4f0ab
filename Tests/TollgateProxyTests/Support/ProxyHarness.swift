import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MockMistral
import NIOCore
import PostgresNIO
import TollgateDomain
import TollgateProxy
import TollgateStorage
import TollgateTestSupport

let upstreamSecret = "sk-upstream-\(UUID().uuidString.prefix(8))"
let proxyKeyring = try! MasterKeyring(keys: [1: SymmetricKey(data: SHA256.hash(data: Data("proxy keyring".utf8)))], primary: 1)
let proxyHasher = try! SecretHasher(pepper: SymmetricKey(data: SHA256.hash(data: Data("proxy pepper".utf8))))

/// A tenant, credential and key created straight in the database.
struct Seed: Sendable {
    var tenantID: UUID
    var keyID: UUID
    var secret: String
    var credentialID: UUID
}

/// Options for the key under test.
struct KeyOptions: Sendable {
    var budget: Budget? = nil
    var tenantBudget: Budget? = nil
    var limits = RateLimits()
    var tenantLimits = RateLimits()
    var models: [String] = []
    var endpoints: [String] = []
    var defaultMaxTokens: Int? = nil
    var currency: Currency = .usd
    /// A second credential tried alongside the mock (e.g. an address that refuses connections).
    var extraCredentialURL: String? = nil
}

/// A mock Mistral server, a migrated database and a proxy app in front of them.
struct ProxyHarness: Sendable {
    let client: any TestClientProtocol
    let mock: MockMistral
    let database: Database
    let seed: Seed
    let databaseName: String
    let logs: LogCapture
    let journalDirectory: String

    /// Every replica's client (index 0 is `client`); replicas share the database, as in production.
    let clients: [any TestClientProtocol]

    /// `poolSize`: Postgres connections per replica (tests firing hundreds of requests at once need more
    /// than the small default of test databases). `postgres`: the server to make the database on
    /// (`TestPostgres.dedicated()` for a test that stops and starts it).
    static func run(_ options: KeyOptions = KeyOptions(), replicas: Int = 1, poolSize: Int? = nil,
                    postgres: TestPostgres = .shared,
                    configure: @Sendable (inout ProxyConfiguration) -> Void = { _ in },
                    _ body: @escaping @Sendable (ProxyHarness) async throws -> Void) async throws {
        let mock = MockMistral(configuration: .init(acceptedKeys: [upstreamSecret]))
        try await mock.withRunningServer { server in
            let testDatabase = try await postgres.makeDatabase(template: try await postgres.migratedTemplate())
            let logs = LogCapture()
            let logger = logs.logger(label: "proxy-test", level: .debug)
            let journalRoot = NSTemporaryDirectory() + "tollgate-journal-\(UUID().uuidString)"
            var apps: [any ApplicationProtocol] = []
            var https: [UpstreamClients] = []
            var postgresClients: [PostgresClient] = []
            for index in 0..<replicas {
                var postgresConfiguration = testDatabase.configuration
                if let poolSize { postgresConfiguration.options.maximumConnections = poolSize }
                let postgres = PostgresClient(configuration: postgresConfiguration, backgroundLogger: logger)
                var configuration = ProxyConfiguration(databaseURL: testDatabase.url)
                configuration.journalDirectory = journalRoot + "/\(index)"
                configuration.proxyID = "test-\(index)-\(UUID().uuidString.prefix(8))"
                configure(&configuration)
                let http = ProxyDependencies.makeUpstreamClients(configuration)
                apps.append(try buildProxyApplication(
                    configuration: configuration,
                    dependencies: ProxyDependencies(client: postgres, keyring: proxyKeyring, hasher: proxyHasher, upstream: http,
                                                    metrics: TestMetrics.registry),
                    logger: logger))
                https.append(http)
                postgresClients.append(postgres)
            }
            let database = Database(client: postgresClients[0], logger: logger)
            let allApps = apps
            do {
                try await Self.runLive(allApps[...], clients: []) { clients in
                    let seed = try await Self.seed(database: database, upstream: server.baseURL, options: options)
                    try await body(ProxyHarness(client: clients[0], mock: mock, database: database, seed: seed,
                                            databaseName: testDatabase.name, logs: logs, journalDirectory: journalRoot + "/0", clients: clients))
                }
            } catch {
                for http in https { try? await http.shutdown() }
                try? FileManager.default.removeItem(atPath: journalRoot)
                throw error
            }
            for http in https { try await http.shutdown() }
            // Every replica has stopped, so its journal is settled (or the test failed above).
            try? FileManager.default.removeItem(atPath: journalRoot)
        }
    }

    /// Starts each app live in turn (nested), then runs `body` with all their clients.
    private static func runLive(_ apps: ArraySlice<any ApplicationProtocol>, clients: [any TestClientProtocol],
                                _ body: @escaping @Sendable ([any TestClientProtocol]) async throws -> Void) async throws {
        guard let first = apps.first else { return try await body(clients) }
        let rest = apps.dropFirst()
        try await first.test(.live) { client in
            try await runLive(rest, clients: clients + [client], body)
        }
    }

    static func seed(database: Database, upstream: String, options: KeyOptions) async throws -> Seed {
        let tenantID = UUID(), keyID = UUID(), credentialID = UUID()
        let dataKey = MasterKeyring.generateDataKey()
        let secret = SecretToken.generate(.virtualKey)
        try await database.transaction { db in
            _ = try await TenantRepository(logger: database.logger).insert(TenantRecord(
                id: tenantID, slug: "t-\(tenantID.uuidString.prefix(8).lowercased())", name: "T", status: .active,
                currency: options.currency, wrappedDataKey: try proxyKeyring.wrapDataKey(dataKey, tenantID: tenantID),
                masterKeyVersion: 1, budget: options.tenantBudget, limits: options.tenantLimits), on: db)
            _ = try await CredentialRepository(logger: database.logger).insert(CredentialRecord(
                id: credentialID, tenantID: tenantID, name: "mock", baseURL: upstream, weight: 1, status: .active,
                secretCiphertext: try CredentialCipher(dataKey: dataKey, tenantID: tenantID).encrypt(upstreamSecret, credentialID: credentialID),
                last4: String(upstreamSecret.suffix(4))), on: db)
            if let extra = options.extraCredentialURL {
                let id = UUID()
                _ = try await CredentialRepository(logger: database.logger).insert(CredentialRecord(
                    id: id, tenantID: tenantID, name: "extra", baseURL: extra, weight: 1, status: .active,
                    secretCiphertext: try CredentialCipher(dataKey: dataKey, tenantID: tenantID).encrypt(upstreamSecret, credentialID: id),
                    last4: "xxxx"), on: db)
            }
            _ = try await VirtualKeyRepository(logger: database.logger).insert(VirtualKeyRecord(
                id: keyID, tenantID: tenantID, name: "k", displayPrefix: secret.displayPrefix, expiresAt: nil,
                allowedModels: options.models, allowedEndpoints: options.endpoints, credentialIDs: [], metadataJSON: "{}",
                budget: options.budget, limits: options.limits, defaultMaxTokens: options.defaultMaxTokens),
                secretHash: proxyHasher.hash(secret.value), on: db)
        }
        return Seed(tenantID: tenantID, keyID: keyID, secret: secret.value, credentialID: credentialID)
    }

    struct Reply: Sendable {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    @discardableResult
    func post(_ path: String, _ json: [String: Any], key: String? = nil, headers extra: HTTPFields = [:]) async throws -> Reply {
        var headers = extra
        headers[.authorization] = "Bearer \(key ?? seed.secret)"
        headers[.contentType] = "application/json"
        let body = ByteBuffer(data: try JSONSerialization.data(withJSONObject: json))
        return try await client.execute(uri: path, method: .post, headers: headers, body: body) {
            Reply(status: $0.status, headers: $0.headers, body: String(buffer: $0.body))
        }
    }

    @discardableResult
    func send(_ method: HTTPRequest.Method, _ path: String, raw: String? = nil, key: String? = nil,
              headers extra: HTTPFields = [:]) async throws -> Reply {
        var headers = extra
        headers[.authorization] = "Bearer \(key ?? seed.secret)"
        if raw != nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: path, method: method, headers: headers, body: raw.map { ByteBuffer(string: $0) }) {
            Reply(status: $0.status, headers: $0.headers, body: String(buffer: $0.body))
        }
    }

    /// Ledger rows of requests admitted on admission tickets: their start comes from the proxy's
    /// clock, in whole milliseconds, where an exact admission's comes from the database's, in
    /// microseconds (a whole millisecond one time in a thousand).
    func ledgerRowsAdmittedOnTickets() async throws -> Int {
        try await requestIDsAdmittedOnTickets().count
    }

    /// The request ids (as the API prints them) of the ledger rows admitted on tickets (see above).
    func requestIDsAdmittedOnTickets() async throws -> Set<String> {
        try await database.read { db in
            Set(try await db.query("""
                SELECT request_id FROM usage_ledger WHERE extract(microseconds FROM started_at)::bigint % 1000 = 0
                """, logger: db.logger).collect().map { try $0.decode(UUID.self).apiString })
        }
    }

    /// Sends `count` chat requests at once, spread over every replica, and returns their statuses.
    func fire(count: Int, body: Data, key: String? = nil) async throws -> [Int] {
        let ports = clients.compactMap(\.port)
        let secret = key ?? seed.secret
        // Enough connections for every request at once, and patience for a loaded CI machine.
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 256
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<count {
                    let port = ports[index % ports.count]
                    group.addTask {
                        let response = try await http.execute(chatRequest(port: port, key: secret, body: body),
                                                              timeout: .seconds(120))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        return Int(response.status.code)
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            try await http.shutdown().get()
            return statuses
        } catch {
            try? await http.shutdown().get()
            throw error
        }
    }

    /// Sends `perStream` chat requests one after another on each of `streamsPerReplica` streams
    /// per replica (a key in steady use everywhere, as admission tickets need), all streams at
    /// once; returns every status.
    func streams(perReplica streamsPerReplica: Int, requests perStream: Int, body: Data) async throws -> [Int] {
        let ports = clients.compactMap(\.port)
        let secret = seed.secret
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                for port in ports {
                    for _ in 0..<streamsPerReplica {
                        group.addTask {
                            var statuses: [Int] = []
                            for _ in 0..<perStream {
                                let response = try await http.execute(chatRequest(port: port, key: secret, body: body),
                                                                      timeout: .seconds(120))
                                _ = try await response.body.collect(upTo: 1 << 20)
                                statuses.append(Int(response.status.code))
                            }
                            return statuses
                        }
                    }
                }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
            try await http.shutdown().get()
            return statuses
        } catch {
            try? await http.shutdown().get()
            throw error
        }
    }

    /// Waits until every admitted request has settled (settlement is asynchronous by design).
    func settled(expectedRows: Int, timeout: Duration = .seconds(10)) async throws -> [LedgerEntry] {
        let deadline = ContinuousClock.now + timeout
        while true {
            // Each read is bounded too: after an outage the pool may still be backing off.
            let snapshot = try? await withTimeLimit(.seconds(2)) { [database] in try await database.read { db in
                var holds = 0
                for try await n in try await db.query("SELECT count(*)::int FROM holds", logger: database.logger).decode(Int.self) { holds = n }
                var rows: [LedgerEntry] = []
                for try await r in try await db.query("""
                    SELECT request_id, model, prompt_tokens, completion_tokens, cached_tokens, cost_nanos, status_code, estimated
                    FROM usage_ledger ORDER BY settled_at
                    """, logger: database.logger).decode((UUID, String?, Int, Int, Int, Int64, Int, Bool).self) {
                    rows.append(LedgerEntry(requestID: r.0, model: r.1, promptTokens: r.2, completionTokens: r.3, cachedTokens: r.4,
                                            costNanos: r.5, statusCode: r.6, estimated: r.7))
                }
                return (holds, rows)
            } }
            if let (holds, rows) = snapshot, holds == 0 && rows.count >= expectedRows { return rows }
            if ContinuousClock.now > deadline {
                Issue.record("timed out waiting for settlement: holds=\(snapshot?.0 ?? -1) rows=\(snapshot?.1.count ?? -1)")
                return snapshot?.1 ?? []
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func budgetWindow(owner: UUID) async throws -> (spent: Int64, reserved: Int64) {
        try await database.read { db in
            var result: (Int64, Int64) = (0, 0)
            for try await row in try await db.query(
                "SELECT spent_nanos, reserved_nanos FROM budget_windows WHERE owner_id = \(owner)",
                logger: database.logger).decode((Int64, Int64).self) { result = row }
            return result
        }
    }
}

struct LedgerEntry: Sendable {
    let requestID: UUID
    let model: String?
    let promptTokens: Int
    let completionTokens: Int
    let cachedTokens: Int
    let costNanos: Int64
    let statusCode: Int
    let estimated: Bool
}

import Testing

/// Runs `body` for at most `limit` (tests must not hang on a database that is away).
func withTimeLimit<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask { try await Task.sleep(for: limit); return nil }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw CancellationError() }
        return value
    }
}
