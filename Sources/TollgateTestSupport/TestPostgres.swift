import Foundation
import TollgateRuntime
import Logging
import PostgresNIO

/// A private, throwaway Postgres server for tests.
///
/// One per test process, started lazily on first use and shared by all (parallel) tests. If the
/// environment variable `TOLLGATE_TEST_DATABASE_URL` (`postgres://user[:password]@host[:port][/db]`)
/// is set, no cluster is started: databases are created on that server instead (TLS disabled).
/// Otherwise a cluster is created with `initdb` in `/tmp/tgpg-XXXXXX` (see `LocalCluster`) and
/// removed when the process exits.
///
/// `TestPostgres.dedicated()` is a second kind: a cluster of its own (always a local one, whatever
/// `TOLLGATE_TEST_DATABASE_URL` says) that a test may stop and start again, e.g. to take the
/// database away under load. Call `destroy()` when done with it (else it goes at process exit).
public actor TestPostgres {
    public static let shared = TestPostgres()

    /// A private cluster for one test, which it may `stop()` and `start()`.
    public static func dedicated() -> TestPostgres { TestPostgres(dedicated: true) }

    private let dedicated: Bool
    #if canImport(Glibc)
    private var cluster: LocalCluster?
    #endif

    struct Server: Sendable {
        var host: String
        var port: Int
        var username: String
        var password: String?
        /// Database the admin connections (CREATE/DROP DATABASE) use.
        var adminDatabase: String
        /// True when we talk to an external server (`TOLLGATE_TEST_DATABASE_URL`).
        var isExternal: Bool
    }

    public struct Error: Swift.Error, CustomStringConvertible {
        public var description: String
    }

    private var serverTask: Task<Server, any Swift.Error>?
    private var templates: [String: Task<String, any Swift.Error>] = [:]
    private var counter = 0
    private var startedIn: Duration?
    private let logger: Logger = {
        var logger = Logger(label: "TollgateTestSupport.TestPostgres")
        logger.logLevel = .warning
        return logger
    }()

    public init() {
        dedicated = false
        // The suite runs every test at once in one process: about 1,900 descriptors at its peak,
        // above the common soft limit of 1024.
        OpenFileLimit.raiseToHardLimit()
    }

    private init(dedicated: Bool) { self.dedicated = dedicated }

    /// How long it took to get the server ready (initdb + start), once started; zero for an external server.
    public var startupDuration: Duration? { startedIn }

    /// Creates a fresh, empty database (unique name) and returns a configuration for it.
    /// With `template`, the database is a copy of that database (`CREATE DATABASE ... TEMPLATE`).
    public func makeDatabase(template: String? = nil) async throws -> TestDatabase {
        let server = try await server()
        while true {
            counter += 1
            let name = "tg_\(getpid())_\(counter)"
            var sql = "CREATE DATABASE \(quoteIdentifier(name))"
            if let template { sql += " TEMPLATE \(quoteIdentifier(template))" }
            // Own PG 15 cluster: FILE_COPY is ~3x faster than the default WAL_LOG for small
            // databases (checkpoints are cheap with fsync=off). External servers may be older.
            if !server.isExternal { sql += " STRATEGY FILE_COPY" }
            do {
                try await execute(sql, on: server)
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P04" {
                continue  // duplicate_database: left over on an external server; take the next name
            }
            return TestDatabase(name: name, server: server)
        }
    }

    /// Creates (once per process, guarded) a template database prepared by `prepare`, so tests can
    /// clone a migrated schema fast with `makeDatabase(template:)`. Returns the template's database
    /// name (`<named>_<pid>`). The client passed to `prepare` is closed before clones are made.
    /// If `prepare` fails, the failure is cached: every caller with the same name gets the same error.
    public func templateDatabase(
        named: String,
        prepare: @escaping @Sendable (PostgresClient) async throws -> Void
    ) async throws -> String {
        if let existing = templates[named] { return try await existing.value }
        guard !named.isEmpty, named.count <= 40,
              named.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || $0 == "_" }),
              named.allSatisfy(\.isASCII)
        else {
            throw Error(description: "template name must be 1-40 ASCII letters, digits or _: \(named)")
        }
        let task = Task<String, any Swift.Error> {
            let server = try await self.server()
            let name = "\(named.lowercased())_\(getpid())"
            try await self.execute("DROP DATABASE IF EXISTS \(quoteIdentifier(name)) WITH (FORCE)", on: server)
            try await self.execute("CREATE DATABASE \(quoteIdentifier(name))", on: server)
            let database = TestDatabase(name: name, server: server)
            try await withClient(database.configuration) { client in try await prepare(client) }
            return name
        }
        templates[named] = task
        return try await task.value
    }

    /// Drops a database (best effort for cleanup; `WITH (FORCE)` disconnects remaining sessions).
    public func dropDatabase(_ name: String) async throws {
        try await execute("DROP DATABASE IF EXISTS \(quoteIdentifier(name)) WITH (FORCE)", on: server())
    }

    /// True when databases live on an external server (`TOLLGATE_TEST_DATABASE_URL`) and should be dropped after use.
    public var usesExternalServer: Bool {
        get async throws { try await server().isExternal }
    }

    // MARK: - Server

    private func server() async throws -> Server {
        if let serverTask { return try await serverTask.value }
        let dedicated = self.dedicated
        let task = Task<Server, any Swift.Error>.detached {
            let clock = ContinuousClock()
            let started = clock.now
            let server = try await self.startServer(dedicated: dedicated)
            await self.didStart(in: clock.now - started)
            return server
        }
        serverTask = task
        return try await task.value
    }

    private func didStart(in duration: Duration) { startedIn = duration }

    private func startServer(dedicated: Bool) async throws -> Server {
        if !dedicated, let url = ProcessInfo.processInfo.environment["TOLLGATE_TEST_DATABASE_URL"], !url.isEmpty {
            return try Self.parse(url: url)
        }
        #if canImport(Glibc)
        let cluster = try await runBlocking { try LocalCluster.start() }
        self.cluster = cluster
        return Server(
            host: "127.0.0.1", port: cluster.port, username: LocalCluster.username, password: nil,
            adminDatabase: "postgres", isExternal: false)
        #else
        throw Error(description: "TestPostgres starts clusters on Linux only; set TOLLGATE_TEST_DATABASE_URL")
        #endif
    }

    // MARK: - Stopping and starting a dedicated cluster

    /// Stops the dedicated cluster with `pg_ctl -m fast stop` (sessions are ended, open
    /// transactions rolled back) and returns once it is down.
    public func stop() async throws {
        try await runPgCtl(stopping: true)
    }

    /// Starts the dedicated cluster again, on the same port and data directory, and returns once it
    /// accepts connections.
    public func start() async throws {
        try await runPgCtl(stopping: false)
    }

    /// Stops the dedicated cluster and deletes its files.
    public func destroy() async {
        #if canImport(Glibc)
        guard dedicated, let cluster else { return }
        self.cluster = nil
        _ = try? await runBlocking { ClusterRegistry.shared.destroy(cluster) }
        #endif
    }

    /// `pg_ctl stop` or `start` on the dedicated cluster (started first if need be).
    private func runPgCtl(stopping: Bool) async throws {
        #if canImport(Glibc)
        guard dedicated else { throw Error(description: "only a TestPostgres.dedicated() cluster can be stopped and started") }
        _ = try await server()
        guard let cluster else { throw Error(description: "the dedicated cluster was destroyed") }
        try await runBlocking { try stopping ? cluster.stopServer() : cluster.startServer() }
        #else
        throw Error(description: "TestPostgres starts clusters on Linux only")
        #endif
    }

    static func parse(url: String) throws -> Server {
        guard let components = URLComponents(string: url),
              components.scheme == "postgres" || components.scheme == "postgresql",
              let host = components.host, !host.isEmpty
        else {
            throw Error(description: "TOLLGATE_TEST_DATABASE_URL is not postgres://user@host:port/db: \(url)")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        return Server(
            host: host,
            port: components.port ?? 5432,
            username: components.user ?? "postgres",
            password: components.password,
            adminDatabase: database.isEmpty ? "postgres" : database,
            isExternal: true)
    }

    // MARK: - Admin connections

    private var connectionID = 0

    /// Runs one statement on a short-lived admin connection (so several CREATE DATABASE can run at once).
    private func execute(_ sql: String, on server: Server) async throws {
        connectionID += 1
        var configuration = PostgresConnection.Configuration(
            host: server.host, port: server.port, username: server.username, password: server.password,
            database: server.adminDatabase, tls: .disable)
        configuration.options.connectTimeout = .seconds(30)
        let connection = try await PostgresConnection.connect(
            configuration: configuration, id: connectionID, logger: logger)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}

/// A database created by `TestPostgres`.
public struct TestDatabase: Sendable {
    public let name: String
    /// TCP, user `tollgate` (or the external server's user), no TLS.
    public let configuration: PostgresClient.Configuration
    /// `postgres://user@host:port/name` (the password, if any, is included percent-encoded).
    public let url: String

    init(name: String, server: TestPostgres.Server) {
        self.name = name
        var configuration = PostgresClient.Configuration(
            host: server.host, port: server.port, username: server.username, password: server.password,
            database: name, tls: .disable)
        // Every parallel test shares one cluster (max_connections 1000): small pools keep the
        // whole suite under that limit.
        configuration.options.maximumConnections = 6
        self.configuration = configuration
        var components = URLComponents()
        components.scheme = "postgres"
        components.user = server.username
        components.password = server.password
        components.host = server.host
        components.port = server.port
        components.path = "/" + name
        self.url = components.string ?? "postgres://\(server.username)@\(server.host):\(server.port)/\(name)"
    }
}

/// Runs `body` with a started `PostgresClient` on a fresh database (optionally cloned from
/// `template`). `client.run()` runs in a task group and is cancelled after `body`.
/// On an external server (`TOLLGATE_TEST_DATABASE_URL`) the database is dropped afterwards.
public func withTestDatabase<T>(
    template: String? = nil,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (PostgresClient, TestDatabase) async throws -> T
) async throws -> T {
    let postgres = TestPostgres.shared
    let database = try await postgres.makeDatabase(template: template)
    let result: Result<T, any Error>
    do {
        result = .success(try await withClient(database.configuration, isolation: isolation) { client in
            try await body(client, database)
        })
    } catch {
        result = .failure(error)
    }
    if (try? await postgres.usesExternalServer) == true {
        try? await postgres.dropDatabase(database.name)
    }
    return try result.get()
}

/// Runs `body` with a `PostgresClient` whose `run()` is active; the client is shut down (all its
/// connections closed) before this returns.
func withClient<T>(
    _ configuration: PostgresClient.Configuration,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (PostgresClient) async throws -> T
) async throws -> T {
    let client = PostgresClient(configuration: configuration)
    return try await withThrowingTaskGroup(of: Void.self, returning: T.self, isolation: isolation) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}

func quoteIdentifier(_ identifier: String) -> String {
    "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
