import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import TollgateDomain
import TollgateStorage

/// `tollgate`: the admin CLI. API commands go through the client generated from admin/openapi.yaml;
/// `migrate`, `bootstrap`, `generate-secrets` and `keyring rewrap --direct` talk to Postgres directly,
/// for the first minutes of a deployment.
public struct Tollgate: AsyncParsableCommand {
    public init() {}
    public static let configuration = CommandConfiguration(
        commandName: "tollgate",
        abstract: "Manage a Tollgate deployment: tenants, admin tokens, credentials, virtual keys, budgets, prices, usage.",
        discussion: """
            CONNECTION: the admin API URL and token come from --admin-url and --token, \
            else TOLLGATE_ADMIN_URL and TOLLGATE_ADMIN_TOKEN, else the current context \
            of the config file ($TOLLGATE_CONFIG or ~/.config/tollgate/config.json, \
            mode 0600; see tollgate context). Tenant-scoped commands take --tenant \
            (an id or a slug); with a tenant token they default to its own tenant.

            VALUES: money is an exact decimal in the tenant's currency (--budget 25.00); \
            periods are lifetime, daily, weekly or monthly; --expires takes 30d, 12h, \
            2w or an ISO 8601 date. Secrets (Mistral API keys, context tokens) are \
            never taken from arguments: they are read from standard input or from a \
            prompt with echo off. A minted key or token is printed once.

            OUTPUT: tables for people, --output json for scripts (the API's field \
            names, ISO 8601 dates). No colour unless stdout is a terminal and NO_COLOR \
            is unset. Errors: one line on stderr with the server's problem detail.

            EXIT CODES:
              0  ok
              1  other error (server error, unexpected response, local I/O)
              2  usage error or invalid input (also HTTP 400)
              3  not found (404)
              4  permission denied (401, 403)
              5  conflict (409, 422)
              6  admin API or database unreachable

            SHELL COMPLETION (bash, zsh, fish):
              tollgate --generate-completion-script bash > ~/.tollgate-completion.bash

            EXAMPLES:
              tollgate context set prod --admin-url https://admin.example.com \\
                --token-stdin < token.txt
              tollgate tenants create acme --name "Acme Corp" --currency EUR \\
                --budget 500.00 --period monthly
              tollgate credentials create --tenant acme --name main < mistral-key.txt
              tollgate keys create --tenant acme --name app --budget 25.00 \\
                --period monthly --rpm 60 --models 'mistral-small-*' --expires 30d
              tollgate usage report --tenant acme --by model --from 2026-11-01
            """,
        groupedSubcommands: [
            CommandGroup(name: "Admin API", subcommands: [
                WhoamiCommand.self, TenantsCommand.self, TokensCommand.self, CredentialsCommand.self, KeysCommand.self,
                BudgetCommand.self, LimitsCommand.self, PricesCommand.self, UsageCommand.self, AuditCommand.self,
                KeyringCommand.self, HealthCommand.self,
            ]),
            CommandGroup(name: "Local configuration", subcommands: [ContextCommand.self]),
            CommandGroup(name: "Direct database", subcommands: [
                Migrate.self, Bootstrap.self, GenerateSecrets.self,
            ]),
        ])
}

struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Postgres URL (default: $DATABASE_URL).", valueName: "url"))
    var databaseURL: String?

    func withDatabase<T: Sendable>(_ body: (Database) async throws -> T) async throws -> T {
        guard let url = databaseURL ?? CLIEnvironment.current.variables["DATABASE_URL"], !url.isEmpty else {
            throw CLIError.usage("Set --database-url or DATABASE_URL.")
        }
        var logger = Logger(label: "tollgate")
        logger.logLevel = .error
        let configuration: PostgresClient.Configuration
        do { configuration = try DatabaseURL.configuration(from: url) } catch {
            throw CLIError.usage("Invalid database URL: \(error)")
        }
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await Self.probe(client, logger: logger)
            return try await body(Database(client: client, logger: logger))
        }
    }

    /// The pool retries connecting forever; a first query bounded in time turns an unreachable
    /// database into exit code 6 instead of a hang.
    private static func probe(_ client: PostgresClient, logger: Logger, seconds: Int = 10) async throws {
        let reached = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await Database(client: client, logger: logger).requireReachable()
                return true
            }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return false
            }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
        guard reached else {
            throw CLIError(code: CLIExitCode.unreachable, message: "Cannot reach the database within \(seconds) s")
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations (DATABASE_URL).",
        discussion: """
            Examples:
              DATABASE_URL=postgres://tollgate@db/tollgate tollgate migrate
              tollgate migrate --status
            """)
    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Only report applied and pending migrations.") var status = false

    func run() async throws {
        let migrations = try Migration.bundled()
        try await database.withDatabase { db in
            let runner = MigrationRunner(client: db.client, migrations: migrations, logger: db.logger)
            if status {
                let current = try await runner.status()
                let pending = current.pending.isEmpty ? "none" : current.pending.joined(separator: ", ")
                say("applied: \(current.applied.count), pending: \(pending)")
            } else {
                let applied = try await runner.migrate()
                say(applied.isEmpty ? "Database is up to date." : "Applied: \(applied.joined(separator: ", "))")
            }
        }
    }
}

struct Bootstrap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the first platform-admin token (printed once).",
        discussion: """
            Talks to the database directly (DATABASE_URL) and needs TOLLGATE_KEY_PEPPER, the same as the servers'. \
            Refuses (exit 5) when an active platform-admin token exists, unless --force is given.

            Example:
              tollgate bootstrap --name ops
            """)
    @OptionGroup var database: DatabaseOptions
    @Option(help: "A name for the token.") var name = "bootstrap"
    @Flag(help: "Create a token even if a platform admin already exists.") var force = false

    func run() async throws {
        let hasher: SecretHasher
        do { hasher = try SecretHasher.load(environment: CLIEnvironment.current.variables) } catch {
            throw CLIError.usage(error.description)
        }
        let token = SecretToken.generate(.adminToken)
        let created: Bool = try await database.withDatabase { db in
            try await db.transaction { connection in
                // One bootstrap at a time, so two concurrent runs cannot both create a token.
                let tokens = AdminTokenRepository(logger: db.logger)
                try await tokens.lockBootstrap(on: connection)
                if try await tokens.countActivePlatformAdmins(on: connection) > 0, !force { return false }
                _ = try await tokens.insert(AdminTokenRecord(
                    id: UUID.random(), tenantID: nil, role: .platformAdmin, name: name, displayPrefix: token.displayPrefix,
                    expiresAt: nil, createdBy: nil), hash: hasher.hash(token.value), on: connection)
                try await AuditRepository(logger: db.logger).append(AuditEntry(
                    tenantID: nil, actorTokenID: nil, actorRole: "bootstrap", action: "admin_token.bootstrap",
                    targetType: "admin_token", targetID: nil, diffJSON: "{\"name\":\(jsonString(name))}", requestID: nil),
                    on: connection)
                return true
            }
        }
        guard created else {
            throw CLIError(code: CLIExitCode.conflict,
                           message: "A platform-admin token already exists; use --force to create another.")
        }
        Printer(format: .table).oneTimeSecret("Platform-admin token", token.value)
    }
}

struct GenerateSecrets: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-secrets",
        abstract: "Print fresh TOLLGATE_MASTER_KEYS and TOLLGATE_KEY_PEPPER values for a new deployment.",
        discussion: """
            Example:
              tollgate generate-secrets >> .env && chmod 600 .env
            """)
    @Option(help: "Master key version to generate.") var version: UInt32 = 1

    func run() async throws {
        say("TOLLGATE_MASTER_KEYS=\(MasterKeyring.generateEntry(version: version))")
        say("TOLLGATE_KEY_PEPPER=\(SecretHasher.generatePepper())")
    }
}

func jsonString(_ text: String) -> String {
    (try? String(data: JSONEncoder().encode(text), encoding: .utf8)) ?? "\"\""
}
