import Foundation
import PostgresNIO
import Testing
import TollgateTestSupport

@Suite("TestPostgres")
struct TestPostgresTests {
    @Test func databasesAreIsolated() async throws {
        let first = try await TestPostgres.shared.makeDatabase()
        let second = try await TestPostgres.shared.makeDatabase()
        #expect(first.name != second.name)

        try await withClient(first) { client in
            try await client.query("CREATE TABLE only_in_first (id int PRIMARY KEY)")
            try await client.query("INSERT INTO only_in_first VALUES (1)")
            let table = try await regclass("only_in_first", client)
            #expect(table == "only_in_first")
        }
        try await withClient(second) { client in
            let table = try await regclass("only_in_first", client)
            #expect(table == nil)
            let current = try await currentDatabase(client)
            #expect(current == second.name)
        }
        // Optional here (the private cluster is thrown away), but keeps an external server tidy.
        try await TestPostgres.shared.dropDatabase(first.name)
        try await TestPostgres.shared.dropDatabase(second.name)
    }

    @Test func serverIsPostgres15() async throws {
        try await withTestDatabase { client, database in
            let version = try await rows(client.query("SELECT version()").decode(String.self)).first
            #expect(version?.hasPrefix("PostgreSQL 15") == true, "\(version ?? "nil")")
            let versionNum = try await rows(
                client.query("SELECT current_setting('server_version_num')::int").decode(Int.self)).first
            #expect(versionNum.map { $0 / 10000 } == 15)
            let current = try await currentDatabase(client)
            #expect(current == database.name)
            #expect(database.url.hasPrefix("postgres://"))
            #expect(database.url.hasSuffix("/\(database.name)"))
        }
        let startup = await TestPostgres.shared.startupDuration
        print("TestPostgres: server ready after \(startup.map { "\($0)" } ?? "?")")
    }

    @Test func templateCloning() async throws {
        let template = try await TestPostgres.shared.templateDatabase(named: "tgtest_template") { client in
            try await client.query("CREATE TABLE widgets (id int PRIMARY KEY, name text NOT NULL)")
            try await client.query("INSERT INTO widgets VALUES (1, 'seed')")
        }
        // Guarded: a second call returns the same template without preparing again.
        let again = try await TestPostgres.shared.templateDatabase(named: "tgtest_template") { _ in
            Issue.record("prepare ran twice")
        }
        #expect(again == template)

        try await withTestDatabase(template: template) { client, _ in
            let before = try await widgetNames(client)
            #expect(before == ["seed"])
            try await client.query("INSERT INTO widgets VALUES (2, 'only in first clone')")
            let after = try await widgetNames(client)
            #expect(after == ["seed", "only in first clone"])
        }
        try await withTestDatabase(template: template) { client, _ in
            let names = try await widgetNames(client)
            #expect(names == ["seed"])
        }
    }

    /// Swift Testing runs these arguments in parallel; each also fans out itself.
    @Test(arguments: 0..<6)
    func parallelTestsShareOneCluster(index: Int) async throws {
        let identities = try await withThrowingTaskGroup(of: ServerIdentity.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await withTestDatabase { client, _ in try await ServerIdentity.fetch(client) }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(identities).count == 1)
        for identity in identities { await SeenServers.shared.record(identity) }
        let seen = await SeenServers.shared.all
        #expect(seen.count == 1, "several clusters: \(seen)")
    }
}

// MARK: - Helpers

private struct ServerIdentity: Hashable, Sendable {
    var port: Int
    var startedAt: String

    static func fetch(_ client: PostgresClient) async throws -> ServerIdentity {
        let result = try await rows(
            client.query("SELECT inet_server_port(), pg_postmaster_start_time()::text").decode((Int, String).self))
        return ServerIdentity(port: result[0].0, startedAt: result[0].1)
    }
}

private actor SeenServers {
    static let shared = SeenServers()
    private(set) var all: Set<ServerIdentity> = []
    func record(_ identity: ServerIdentity) { all.insert(identity) }
}

private func withClient<T>(
    _ database: TestDatabase,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (PostgresClient) async throws -> T
) async throws -> T {
    let client = PostgresClient(configuration: database.configuration)
    return try await withThrowingTaskGroup(of: Void.self, returning: T.self, isolation: isolation) { group in
        group.addTask { await client.run() }
        defer { group.cancelAll() }
        return try await body(client)
    }
}

private func regclass(_ table: String, _ client: PostgresClient) async throws -> String? {
    try await rows(client.query("SELECT to_regclass(\(table))::text").decode(String?.self)).first ?? nil
}

private func currentDatabase(_ client: PostgresClient) async throws -> String? {
    try await rows(client.query("SELECT current_database()::text").decode(String.self)).first
}

private func widgetNames(_ client: PostgresClient) async throws -> [String] {
    try await rows(client.query("SELECT name FROM widgets ORDER BY id").decode(String.self))
}

private func rows<S: AsyncSequence>(_ sequence: S) async throws -> [S.Element] {
    var result: [S.Element] = []
    for try await element in sequence { result.append(element) }
    return result
}
