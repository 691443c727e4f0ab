import Foundation
import Logging
import PostgresNIO
import Testing
import TollgateTestSupport
@testable import TollgateStorage

@Suite struct MigrationTests {
    static let logger: Logger = {
        var logger = Logger(label: "MigrationTests")
        logger.logLevel = .warning
        return logger
    }()

    static func real() throws -> [Migration] { try Migration.load(from: StorageTestPaths.migrations) }
    /// The first two real files, as "the build's migrations": runner tests stay valid as new files are added.
    static func base() throws -> [Migration] { Array(try real().prefix(2)) }

    static func runner(_ client: PostgresClient, _ migrations: [Migration]) -> MigrationRunner {
        MigrationRunner(client: client, migrations: migrations, logger: logger)
    }

    // MARK: Loading files

    @Test func loadsTheRealFilesInOrder() throws {
        let migrations = try Self.real()
        #expect(migrations.map(\.version) == Array(1...migrations.count), "versions are contiguous from 1")
        #expect(Array(migrations.map(\.name).prefix(2)) == ["0001_init", "0002_seed_prices"])
        let files = try FileManager.default.contentsOfDirectory(atPath: StorageTestPaths.migrations.path)
            .filter { $0.hasSuffix(".sql") }.sorted()
        #expect(migrations.map { $0.name + ".sql" } == files)
        for migration in migrations {
            #expect(migration.checksum.count == 64)
            #expect(migration.checksum.allSatisfy { "0123456789abcdef".contains($0) })
            let file = StorageTestPaths.migrations.appendingPathComponent(migration.name + ".sql")
            #expect(migration.sql == (try String(contentsOf: file, encoding: .utf8)))
        }
    }

    @Test func checksumIsSHA256OfTheText() {
        #expect(Migration(version: 1, name: "x", sql: "").checksum
                == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Migration(version: 1, name: "x", sql: "abc").checksum
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Migration(version: 1, name: "x", sql: "abc\n").checksum != Migration(version: 1, name: "x", sql: "abc").checksum)
    }

    @Test func bundledCopyMatchesTheMigrationsFolder() throws {
        let bundled = try Migration.bundled(environment: [:])
        let real = try Self.real()
        #expect(bundled.map(\.name) == real.map(\.name))
        #expect(bundled.map(\.checksum) == real.map(\.checksum), "Sources/TollgateStorage/MigrationFiles is out of date")
    }

    @Test func loadOrdersByVersionAndIgnoresOtherFiles() throws {
        try withTemporaryDirectory { dir in
            try write(dir, "0010_c.sql", "SELECT 10")
            try write(dir, "0002_b.sql", "SELECT 2")
            try write(dir, "0001_a.sql", "SELECT 1")
            try write(dir, "README.md", "not sql")
            try write(dir, "0003_x.sql.bak", "not sql either")
            let migrations = try Migration.load(from: dir)
            #expect(migrations.map(\.version) == [1, 2, 10])
            #expect(migrations.map(\.name) == ["0001_a", "0002_b", "0010_c"])
            #expect(migrations.map(\.sql) == ["SELECT 1", "SELECT 2", "SELECT 10"])
            let viaEnvironment = try Migration.bundled(environment: ["TOLLGATE_MIGRATIONS_DIR": dir.path])
            #expect(viaEnvironment == migrations)
        }
    }

    @Test(arguments: ["1_a.sql", "001_a.sql", "00001_a.sql", "abcd.sql", "init.sql", "_0001.sql"])
    func loadRejectsBadFileNames(_ file: String) throws {
        try withTemporaryDirectory { dir in
            try write(dir, "0001_ok.sql", "SELECT 1")
            try write(dir, file, "SELECT 2")
            #expect(throws: MigrationError.badFileName(file)) { try Migration.load(from: dir) }
        }
    }

    @Test func loadRejectsDuplicateVersions() throws {
        try withTemporaryDirectory { dir in
            try write(dir, "0001_a.sql", "SELECT 1")
            try write(dir, "0001_b.sql", "SELECT 2")
            #expect(throws: MigrationError.duplicateVersion(1)) { try Migration.load(from: dir) }
        }
    }

    @Test func loadFailsOnMissingDirectory() {
        #expect(throws: (any Error).self) {
            try Migration.load(from: URL(fileURLWithPath: "/nonexistent/tollgate-migrations-\(UUID())"))
        }
    }

    // MARK: Runner against Postgres

    @Test func freshDatabaseGetsEverything() async throws {
        let migrations = try Self.base()
        try await withTestDatabase { client, _ in
            let before = try await Self.runner(client, migrations).status()
            #expect(before.applied == [])
            #expect(before.pending == ["0001_init", "0002_seed_prices"])
            #expect(!before.isCurrent)

            let applied = try await Self.runner(client, migrations).migrate()
            #expect(applied == ["0001_init", "0002_seed_prices"])

            let rows = try await schemaMigrations(client)
            #expect(rows.map(\.version) == [1, 2])
            #expect(rows.map(\.name) == migrations.map(\.name))
            #expect(rows.map(\.checksum) == migrations.map(\.checksum))

            for table in ["tenants", "admin_tokens", "credentials", "virtual_keys", "virtual_key_secrets", "budget_windows",
                          "prices", "usage_ledger", "usage_ledger_default", "audit_log", "idempotency_keys"] {
                #expect(try await tableExists(table, client), "\(table)")
            }
            #expect(try await client.query("SELECT count(*) FROM prices").storageTestInts() == [100])

            let after = try await Self.runner(client, migrations).status()
            #expect(after.applied == ["0001_init", "0002_seed_prices"])
            #expect(after.pending == [])
            #expect(after.isCurrent)
        }
    }

    @Test func rerunAppliesNothing() async throws {
        let migrations = try Self.base()
        try await withTestDatabase { client, _ in
            try await Self.runner(client, migrations).migrate()
            let before = try await appliedAt(client)
            #expect(try await Self.runner(client, migrations).migrate() == [])
            #expect(try await Self.runner(client, migrations).migrate() == [])
            #expect(try await appliedAt(client) == before)
            #expect(try await client.query("SELECT count(*) FROM prices").storageTestInts() == [100])
        }
    }

    @Test func appliesOnlyWhatIsPending() async throws {
        let migrations = try Self.base()
        try await withTestDatabase { client, _ in
            #expect(try await Self.runner(client, [migrations[0]]).migrate() == ["0001_init"])
            let status = try await Self.runner(client, migrations).status()
            #expect(status.applied == ["0001_init"])
            #expect(status.pending == ["0002_seed_prices"])
            #expect(try await client.query("SELECT count(*) FROM prices").storageTestInts() == [0])
            #expect(try await Self.runner(client, migrations).migrate() == ["0002_seed_prices"])
            #expect(try await schemaMigrations(client).map(\.version) == [1, 2])
        }
    }

    @Test func changedChecksumStopsEverything() async throws {
        let migrations = try Self.base()
        try await withTestDatabase { client, _ in
            try await Self.runner(client, migrations).migrate()
            let before = try await schemaMigrations(client)

            let tampered = [
                migrations[0],
                Migration(version: 2, name: "0002_seed_prices", sql: migrations[1].sql + "\n"),
                Migration(version: 3, name: "0003_new", sql: "CREATE TABLE must_not_exist (id int)"),
            ]
            await #expect(throws: MigrationError.checksumMismatch(name: "0002_seed_prices")) {
                try await Self.runner(client, tampered).migrate()
            }
            await #expect(throws: MigrationError.checksumMismatch(name: "0002_seed_prices")) {
                try await Self.runner(client, tampered).status()
            }
            #expect(try await schemaMigrations(client) == before)
            #expect(try await !tableExists("must_not_exist", client))

            // The error names the file.
            #expect(MigrationError.checksumMismatch(name: "0002_seed_prices").description.contains("0002_seed_prices"))
            // The lock was released: the untampered list still runs (and has nothing to do).
            #expect(try await Self.runner(client, migrations).migrate() == [])
        }
    }

    @Test func appliedMigrationUnknownToTheBuild() async throws {
        let migrations = try Self.base()
        try await withTestDatabase { client, _ in
            try await Self.runner(client, migrations).migrate()
            await #expect(throws: MigrationError.unknownApplied(name: "0002_seed_prices")) {
                try await Self.runner(client, [migrations[0]]).migrate()
            }
            await #expect(throws: MigrationError.unknownApplied(name: "0002_seed_prices")) {
                try await Self.runner(client, [migrations[0]]).status()
            }
            // A renamed file is unknown too, even with the same version and contents.
            let renamed = [migrations[0], Migration(version: 2, name: "0002_prices", sql: migrations[1].sql)]
            await #expect(throws: MigrationError.unknownApplied(name: "0002_seed_prices")) {
                try await Self.runner(client, renamed).migrate()
            }
            #expect(try await schemaMigrations(client).map(\.name) == ["0001_init", "0002_seed_prices"])
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func failingMigrationRollsBackEntirely() async throws {
        let migrations = try Self.base()
        let broken = Migration(version: 3, name: "0003_broken", sql: """
            CREATE TABLE broken_a (id int PRIMARY KEY);
            INSERT INTO broken_a VALUES (1);
            ALTER TABLE tenants ADD COLUMN broken_column int;
            SELECT * FROM no_such_table;
            CREATE TABLE broken_b (id int);
            """)
        try await withTestDatabase { client, database in
            do {
                try await Self.runner(client, migrations + [broken]).migrate()
                Issue.record("migrate succeeded")
            } catch let MigrationError.failed(name, message) {
                #expect(name == "0003_broken")
                #expect(message.contains("no_such_table"), "\(message)")
                #expect(MigrationError.failed(name: name, message: message).description.contains("0003_broken"))
            }
            // The earlier migrations committed; nothing of the broken one did.
            #expect(try await schemaMigrations(client).map(\.version) == [1, 2])
            #expect(try await !tableExists("broken_a", client))
            #expect(try await !tableExists("broken_b", client))
            let column = try await client.query("""
                SELECT count(*) FROM information_schema.columns WHERE table_name = 'tenants' AND column_name = 'broken_column'
                """).storageTestInts()
            #expect(column == [0])
            let status = try await Self.runner(client, migrations + [broken]).status()
            #expect(status.pending == ["0003_broken"])

            // The advisory lock was released: another process can migrate (a fixed file) right away.
            let fixed = Migration(version: 3, name: "0003_fixed", sql: "CREATE TABLE broken_a (id int PRIMARY KEY)")
            let appliedByOther = try await withIndependentClients(1, database.configuration) { clients in
                try await Self.runner(clients[0], migrations + [fixed]).migrate()
            }
            #expect(appliedByOther == ["0003_fixed"])
            #expect(try await tableExists("broken_a", client))
        }
    }

    @Test func syntaxErrorReportsServerMessage() async throws {
        try await withTestDatabase { client, _ in
            let bad = Migration(version: 1, name: "0001_bad", sql: "CREATE TABLE ok_table (id int);\nCREATE TABLE (oops")
            do {
                try await Self.runner(client, [bad]).migrate()
                Issue.record("migrate succeeded")
            } catch let MigrationError.failed(name, message) {
                #expect(name == "0001_bad")
                #expect(message.contains("syntax error"), "\(message)")
            }
            #expect(try await !tableExists("ok_table", client))
            #expect(try await schemaMigrations(client).isEmpty)
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func concurrentRunnersApplyEachMigrationOnce() async throws {
        // A slow third migration widens the race window; applying it twice would fail on CREATE TABLE.
        let migrations = try Self.base() + [
            Migration(version: 3, name: "0003_slow", sql: "SELECT pg_sleep(0.3);\nCREATE TABLE slow_marker (id int)"),
        ]
        try await withTestDatabase { client, database in
            let results = try await withIndependentClients(8, database.configuration) { clients in
                try await withThrowingTaskGroup(of: [String].self) { group in
                    for client in clients {
                        group.addTask { try await Self.runner(client, migrations).migrate() }
                    }
                    var all: [[String]] = []
                    for try await applied in group { all.append(applied) }
                    return all
                }
            }
            #expect(results.count == 8)
            let flat = results.flatMap { $0 }
            #expect(flat.sorted() == ["0001_init", "0002_seed_prices", "0003_slow"])
            #expect(Dictionary(grouping: flat, by: { $0 }).values.allSatisfy { $0.count == 1 })
            #expect(try await schemaMigrations(client).map(\.version) == [1, 2, 3])
            #expect(try await tableExists("slow_marker", client))
            #expect(try await client.query("SELECT count(*) FROM prices").storageTestInts() == [100])
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func concurrentRunnersLeaveOneCopyOfEverything() async throws {
        let migrations = try Self.base()
        try await withTestDatabase { client, database in
            try await withIndependentClients(8, database.configuration) { clients in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for client in clients {
                        group.addTask { try await Self.runner(client, migrations).migrate() }
                    }
                    try await group.waitForAll()
                }
            }
            #expect(try await schemaMigrations(client).map(\.version) == [1, 2])
            #expect(try await client.query("SELECT count(*) FROM prices").storageTestInts() == [100])
            #expect(try await Self.runner(client, migrations).status().isCurrent)
        }
    }

    /// `status()` creates `schema_migrations` if missing, outside the advisory lock. Several processes
    /// asking for the status of a fresh database at once (e.g. health checks at startup) must not fail.
    @Test(.timeLimit(.minutes(3)))
    func concurrentStatusOnFreshDatabase() async throws {
        let migrations = try Self.base()
        for _ in 0..<3 {
            try await withTestDatabase { _, database in
                try await withIndependentClients(8, database.configuration) { clients in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for client in clients {
                            group.addTask {
                                do { _ = try await Self.runner(client, migrations).status() } catch {
                                    Issue.record("status() failed: \(String(reflecting: error))")
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                }
            }
        }
    }

    /// The same while other processes are migrating.
    @Test(.timeLimit(.minutes(3)))
    func statusWhileOthersMigrate() async throws {
        let migrations = try Self.base()
        for _ in 0..<3 {
            try await withTestDatabase { _, database in
                try await withIndependentClients(8, database.configuration) { clients in
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for (index, client) in clients.enumerated() {
                            group.addTask {
                                if index.isMultiple(of: 2) {
                                    _ = try await Self.runner(client, migrations).status()
                                } else {
                                    try await Self.runner(client, migrations).migrate()
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                }
            }
        }
    }
}

// MARK: - Helpers

private struct AppliedRow: Equatable {
    var version: Int
    var name: String
    var checksum: String
}

private func schemaMigrations(_ client: PostgresClient) async throws -> [AppliedRow] {
    var rows: [AppliedRow] = []
    for try await (version, name, checksum) in try await client.query(
        "SELECT version, name, checksum FROM schema_migrations ORDER BY version").decode((Int, String, String).self) {
        rows.append(AppliedRow(version: version, name: name, checksum: checksum))
    }
    return rows
}

private func appliedAt(_ client: PostgresClient) async throws -> [String] {
    var rows: [String] = []
    for try await value in try await client.query(
        "SELECT applied_at::text FROM schema_migrations ORDER BY version").decode(String.self) {
        rows.append(value)
    }
    return rows
}

private func tableExists(_ table: String, _ client: PostgresClient) async throws -> Bool {
    for try await exists in try await client.query("SELECT to_regclass(\(table)) IS NOT NULL").decode(Bool.self) {
        return exists
    }
    return false
}

private func write(_ dir: URL, _ file: String, _ text: String) throws {
    try text.write(to: dir.appendingPathComponent(file), atomically: true, encoding: .utf8)
}

private func withTemporaryDirectory(_ body: (URL) throws -> Void) throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tg-migrations-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    try body(dir)
}

/// `count` independent clients (separate pools, like separate processes) on one database.
func withIndependentClients<T>(
    _ count: Int,
    _ configuration: PostgresClient.Configuration,
    isolation: isolated (any Actor)? = #isolation,
    _ body: ([PostgresClient]) async throws -> T
) async throws -> T {
    let clients = (0..<count).map { _ in PostgresClient(configuration: configuration) }
    return try await withThrowingTaskGroup(of: Void.self, returning: T.self, isolation: isolation) { group in
        for client in clients { group.addTask { await client.run() } }
        defer { group.cancelAll() }
        return try await body(clients)
    }
}
