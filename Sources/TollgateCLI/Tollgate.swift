import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import TollgateDomain
import TollgateStorage

/// `tollgate`: the admin CLI. This build has the commands that talk to the database directly,
/// for the first minutes of a deployment; the API-backed commands come with the CLI issue.

public struct Tollgate: AsyncParsableCommand {
    public init() {}
    public static let configuration = CommandConfiguration(
        commandName: "tollgate",
        abstract: "Manage a Tollgate deployment.",
        subcommands: [Migrate.self, Bootstrap.self, GenerateSecrets.self, KeyringCommand.self])
}

/// Exit codes shared by every command (documented in the README).
enum ExitStatus {
    static let usage: Int32 = 2
    static let conflict: Int32 = 5
    static let unreachable: Int32 = 6
}

struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: "Postgres URL (default: $DATABASE_URL).")
    var databaseURL: String?

    func withDatabase<T: Sendable>(_ body: (Database) async throws -> T) async throws -> T {
        guard let url = databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else {
            throw ValidationError("Set --database-url or DATABASE_URL.")
        }
        let logger = Logger(label: "tollgate")
        let client = PostgresClient(configuration: try DatabaseURL.configuration(from: url), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(Database(client: client, logger: logger))
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations.")
    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Only report applied and pending migrations.") var status = false

    func run() async throws {
        let migrations = try Migration.bundled()
        try await database.withDatabase { db in
            let runner = MigrationRunner(client: db.client, migrations: migrations, logger: db.logger)
            if status {
                let current = try await runner.status()
                print("applied: \(current.applied.count), pending: \(current.pending.joined(separator: ", "))")
            } else {
                let applied = try await runner.migrate()
                print(applied.isEmpty ? "Database is up to date." : "Applied: \(applied.joined(separator: ", "))")
            }
        }
    }
}

struct Bootstrap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the first platform-admin token (printed once).",
        discussion: "Refuses when an active platform-admin token exists, unless --force is given. Needs TOLLGATE_KEY_PEPPER.")
    @OptionGroup var database: DatabaseOptions
    @Option(help: "A name for the token.") var name = "bootstrap"
    @Flag(help: "Create a token even if a platform admin already exists.") var force = false

    func run() async throws {
        let hasher = try SecretHasher.load(environment: ProcessInfo.processInfo.environment)
        let token = SecretToken.generate(.adminToken)
        let created: Bool = try await database.withDatabase { db in
            try await db.transaction { connection in
                // One bootstrap at a time, so two concurrent runs cannot both create a token.
                try await connection.query("SELECT pg_advisory_xact_lock(7485)", logger: db.logger)
                let tokens = AdminTokenRepository(logger: db.logger)
                if try await tokens.countActivePlatformAdmins(on: connection) > 0, !force { return false }
                _ = try await tokens.insert(AdminTokenRecord(
                    id: UUID(), tenantID: nil, role: .platformAdmin, name: name, displayPrefix: token.displayPrefix,
                    expiresAt: nil, createdBy: nil), hash: hasher.hash(token.value), on: connection)
                try await AuditRepository(logger: db.logger).append(AuditEntry(
                    tenantID: nil, actorTokenID: nil, actorRole: "bootstrap", action: "admin_token.bootstrap",
                    targetType: "admin_token", targetID: nil, diffJSON: "{\"name\":\(jsonString(name))}", requestID: nil),
                    on: connection)
                return true
            }
        }
        guard created else {
            FileHandle.standardError.write(Data("A platform-admin token already exists; use --force to create another.\n".utf8))
            throw ExitCode(ExitStatus.conflict)
        }
        print("Platform-admin token (shown once; store it now):")
        print(token.value)
    }
}

struct GenerateSecrets: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-secrets",
        abstract: "Print fresh TOLLGATE_MASTER_KEYS and TOLLGATE_KEY_PEPPER values for a new deployment.")
    @Option(help: "Master key version to generate.") var version: UInt32 = 1

    func run() async throws {
        print("TOLLGATE_MASTER_KEYS=\(MasterKeyring.generateEntry(version: version))")
        print("TOLLGATE_KEY_PEPPER=\(SecretHasher.generatePepper())")
    }
}

struct KeyringCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyring", abstract: "Master keyring operations that talk to the database directly.",
        subcommands: [Rewrap.self])

    struct Rewrap: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rewrap every tenant data key under the primary master key.",
            discussion: """
                Rotation without downtime: add the new key version to TOLLGATE_MASTER_KEYS on every server, make it \
                primary (TOLLGATE_MASTER_KEY_PRIMARY or the highest version), run this, then remove the old version.
                """)
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let keyring = try MasterKeyring.load(environment: ProcessInfo.processInfo.environment)
            let result = try await database.withDatabase { db in
                try await KeyringRewrapper(database: db, keyring: keyring, tenants: TenantRepository(logger: db.logger))
                    .rewrapAll { count in
                        try await db.transaction { connection in
                            try await AuditRepository(logger: db.logger).append(AuditEntry(
                                tenantID: nil, actorTokenID: nil, actorRole: "cli", action: "keyring.rewrap", targetType: "keyring",
                                targetID: nil, diffJSON: "{\"primaryVersion\":\(keyring.primaryVersion),\"rewrapped\":\(count)}",
                                requestID: nil), on: connection)
                        }
                    }
            }
            print("primary version \(keyring.primaryVersion): rewrapped \(result.rewrapped), already current \(result.alreadyCurrent)")
        }
    }
}

func jsonString(_ text: String) -> String {
    (try? String(data: JSONEncoder().encode(text), encoding: .utf8)) ?? "\"\""
}
