import ArgumentParser
import Foundation
import TollgateAdminAPI
import TollgateDomain
import TollgateStorage

struct KeyringCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyring",
        abstract: "Master keyring: status and rewrapping tenant data keys under the primary master key.",
        discussion: """
            Rotating the master key is a configuration change plus a rewrap; there is \
            no API call that creates key material. Without downtime:
              1. tollgate generate-secrets --version 2   (take its master key entry)
              2. add it to TOLLGATE_MASTER_KEYS on every server next to the old one,
                 make it primary (TOLLGATE_MASTER_KEY_PRIMARY or the highest
                 version) and restart the servers
              3. tollgate keyring rewrap            (through the admin API), or
                 tollgate keyring rewrap --direct   (straight to the database)
              4. tollgate keyring status: when no tenant is left on the old
                 version, remove it from TOLLGATE_MASTER_KEYS
            """,
        subcommands: [Status.self, Rewrap.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status", abstract: "Master key versions and how many tenant data keys each wraps (platform admins).")
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                switch try await session.client.getKeyring() {
                case .ok(let ok):
                    let status = try ok.body.json
                    if session.printer.isJSON { return try session.printer.json(status) }
                    say("Primary master key version: \(status.primaryVersion); loaded: \(status.versions.map(String.init).joined(separator: ", "))")
                    session.printer.table(["VERSION", "TENANTS"], status.tenantsByVersion.map { [String($0.version), String($0.tenants)] },
                                          empty: "No tenants.")
                case .default(let code, let problem): throw session.failure(code, problem)
                }
            }
        }
    }

    struct Rewrap: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rewrap",
            abstract: "Rewrap every tenant data key under the primary master key (through the API, or --direct).",
            discussion: """
                By default the admin API does it (platform-admin token). With --direct the CLI talks to Postgres \
                itself, with DATABASE_URL (or --database-url) and TOLLGATE_MASTER_KEYS holding every version in use: \
                for when no admin server is up yet. Either way is idempotent.

                Examples:
                  tollgate keyring rewrap
                  DATABASE_URL=postgres://… TOLLGATE_MASTER_KEYS=1:…,2:… \\
                    tollgate keyring rewrap --direct
                """)
        @Flag(help: "Talk to the database directly instead of the admin API.") var direct = false
        @OptionGroup(title: "Database (with --direct)") var database: DatabaseOptions
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func validate() throws {
            if database.databaseURL != nil, !direct { throw ValidationError("--database-url needs --direct") }
        }

        func run() async throws {
            let result: Schemas.RewrapResult
            if direct {
                result = try await rewrapDirect()
            } else {
                result = try await connection.withSession { session in
                    switch try await session.client.rewrapKeyring() {
                    case .ok(let ok): return try ok.body.json
                    case .default(let code, let problem): throw session.failure(code, problem)
                    }
                }
            }
            let printer = Printer(format: connection.output)
            if printer.isJSON { return try printer.json(result) }
            say("Primary version \(result.primaryVersion): rewrapped \(result.rewrapped), already current \(result.alreadyCurrent)")
        }

        private func rewrapDirect() async throws -> Schemas.RewrapResult {
            let keyring: MasterKeyring
            do { keyring = try MasterKeyring.load(environment: CLIEnvironment.current.variables) } catch {
                throw CLIError.usage("\(error)")
            }
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
            return Schemas.RewrapResult(primaryVersion: Int(keyring.primaryVersion), rewrapped: Int64(result.rewrapped),
                                        alreadyCurrent: Int64(result.alreadyCurrent))
        }
    }
}
