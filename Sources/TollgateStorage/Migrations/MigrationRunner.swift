import Logging
import PostgresNIO

/// Applies pending migrations, each in its own transaction, under a session advisory lock so that
/// several processes starting at once apply each file exactly once.
public struct MigrationRunner: Sendable {
    /// Arbitrary constant identifying Tollgate's migration lock ("tollgate" in ASCII).
    static let advisoryLockKey: Int64 = 0x746F_6C6C_6761_7465

    public let client: PostgresClient
    public let migrations: [Migration]
    public let logger: Logger

    public init(client: PostgresClient, migrations: [Migration], logger: Logger) {
        self.client = client
        self.migrations = migrations
        self.logger = logger
    }

    public struct Status: Sendable, Equatable {
        public var applied: [String]
        public var pending: [String]
        public var isCurrent: Bool { pending.isEmpty }
    }

    /// Applies what is pending and returns the names applied by this call.
    @discardableResult
    public func migrate() async throws -> [String] {
        try await client.withConnection { connection in
            try await connection.query("SELECT pg_advisory_lock(\(Self.advisoryLockKey))", logger: logger)
            do {
                let applied = try await applyPending(on: connection)
                try await connection.query("SELECT pg_advisory_unlock(\(Self.advisoryLockKey))", logger: logger)
                return applied
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.advisoryLockKey))", logger: logger)
                throw error
            }
        }
    }

    /// What is applied and pending, verifying checksums (throws on a changed or unknown file).
    public func status() async throws -> Status {
        try await client.withConnection { connection in
            // Read-only: never creates the table (that races with a concurrent migrate), a
            // database without it simply has everything pending.
            var exists = false
            for try await flag in try await connection.query(
                "SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger).decode(Bool.self) { exists = flag }
            let applied = exists ? try await appliedChecksums(on: connection) : [:]
            try verify(applied)
            return Status(
                applied: migrations.filter { applied[$0.name] != nil }.map(\.name),
                pending: migrations.filter { applied[$0.name] == nil }.map(\.name)
            )
        }
    }

    private func applyPending(on connection: PostgresConnection) async throws -> [String] {
        try await ensureTable(on: connection)
        let applied = try await appliedChecksums(on: connection)
        try verify(applied)
        var done: [String] = []
        for migration in migrations where applied[migration.name] == nil {
            logger.info("applying migration", metadata: ["migration": "\(migration.name)"])
            do {
                try await connection.withTransaction(logger: logger) { tx in
                    for statement in SQLScript.statements(in: migration.sql) {
                        try await tx.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await tx.query(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (\(migration.version), \(migration.name), \(migration.checksum))",
                        logger: logger)
                }
            } catch let error as PSQLError {
                throw MigrationError.failed(name: migration.name, message: error.serverInfo?[.message] ?? "\(error.code)")
            } catch let error as PostgresTransactionError {
                let message = (error.closureError as? PSQLError)?.serverInfo?[.message] ?? "\(error)"
                throw MigrationError.failed(name: migration.name, message: message)
            }
            done.append(migration.name)
        }
        return done
    }

    private func ensureTable(on connection: PostgresConnection) async throws {
        try await connection.query("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """, logger: logger)
    }

    private func appliedChecksums(on connection: PostgresConnection) async throws -> [String: String] {
        var result: [String: String] = [:]
        let rows = try await connection.query("SELECT name, checksum FROM schema_migrations", logger: logger)
        for try await (name, checksum) in rows.decode((String, String).self) { result[name] = checksum }
        return result
    }

    private func verify(_ applied: [String: String]) throws {
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.name, $0.checksum) })
        for (name, checksum) in applied.sorted(by: { $0.key < $1.key }) {
            guard let expected = known[name] else { throw MigrationError.unknownApplied(name: name) }
            guard expected == checksum else { throw MigrationError.checksumMismatch(name: name) }
        }
    }
}
