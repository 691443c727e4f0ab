import ArgumentParser
import Foundation
import TollgateAdminAPI

/// Refuses a secret given on the command line (it would already sit in shell history and `ps`).
struct RefuseSecretArguments: ParsableArguments {
    @Option(name: [.customLong("secret"), .customLong("api-key"), .customLong("mistral-key")],
            help: ArgumentHelp("", visibility: .private))
    var secret: String?

    func validate() throws {
        if secret != nil {
            throw ValidationError("""
                Secrets are never taken from the command line (they leak into shell history and ps). \
                Pipe the Mistral API key on standard input (e.g. `< key.txt`) or run in a terminal to be prompted. \
                Consider this key exposed and rotate it.
                """)
        }
    }
}

struct CredentialsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credentials",
        abstract: "Store, list, update and rotate a tenant's Mistral API keys (encrypted at rest, never shown).",
        discussion: """
            The Mistral API key is read from standard input when it is not a terminal, else from a prompt with \
            echo off. It is never accepted as an argument, and never printed: only its last 4 characters are shown. \
            A CREDENTIAL argument is an id or a name.

            Examples:
              tollgate credentials create --tenant acme --name main < mistral-key.txt
              pass show mistral/acme | tollgate credentials rotate main --tenant acme
              tollgate credentials update main --tenant acme --weight 3
              tollgate credentials update backup --tenant acme --status disabled
            """,
        subcommands: [Create.self, ListCredentials.self, Get.self, Update.self, Rotate.self],
        aliases: ["credential", "creds"])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Store a Mistral API key (read from stdin or a prompt, never from arguments).",
            discussion: """
                Example:
                  tollgate credentials create --tenant acme --name main < mistral-key.txt
                """)
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @Option(help: "A name, unique in the tenant.") var name: String
        @Option(name: .customLong("base-url"), help: ArgumentHelp("https URL of the Mistral API (default: https://api.mistral.ai).", valueName: "url"))
        var baseURL: String?
        @Option(help: "Share of traffic among the tenant's active credentials, 0-1000 (default 1).") var weight: Int?
        @Option(name: .customLong("idempotency-key"), help: ArgumentHelp("Retry-safe creation: the same key replays the first response.", valueName: "key"))
        var idempotencyKey: String?
        @OptionGroup var refuse: RefuseSecretArguments
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            let secret = try readSecret(prompt: "Mistral API key for \(name): ", what: "Mistral API key")
            try await connection.withSession { session in
                let tenantID = try await session.tenantID(tenant)
                let body = Schemas.CredentialCreate(name: name, baseUrl: baseURL, weight: weight, secret: secret)
                switch try await session.client.createCredential(path: .init(tenantId: tenantID),
                                                                 headers: .init(idempotencyKey: idempotencyKey), body: .json(body)) {
                case .created(let created): try show(try created.body.json, session, verb: "Stored")
                case .default(let status, let problem): throw session.failure(status, problem)
                }
            }
        }
    }

    struct ListCredentials: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List a tenant's credentials.", aliases: ["ls"])
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @OptionGroup(title: "Paging") var page: PageOptions
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let tenantID = try await session.tenantID(tenant)
                let result = try await page.collect { limit, cursor in
                    switch try await session.client.listCredentials(path: .init(tenantId: tenantID), query: .init(limit: limit, cursor: cursor)) {
                    case .ok(let ok): let page = try ok.body.json; return (page.data, page.nextCursor)
                    case .default(let status, let problem): throw session.failure(status, problem)
                    }
                }
                if session.printer.isJSON { return try session.printer.page(result.items, nextCursor: result.nextCursor) }
                session.printer.table(
                    ["ID", "NAME", "STATUS", "WEIGHT", "KEY", "BASE URL", "UPDATED"],
                    result.items.map { c in
                        [c.id, c.name, c.status.rawValue, String(c.weight), "…" + c.last4, c.baseUrl, Format.date(c.updatedAt)]
                    }, empty: "No credentials.", nextCursor: result.nextCursor)
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Show a credential (never its secret).", aliases: ["show"])
        @Argument(help: "Credential id or name.") var credential: String
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let tenantID = try await session.tenantID(tenant)
                let id = try await session.credentialID(credential, tenantID: tenantID)
                switch try await session.client.getCredential(path: .init(tenantId: tenantID, credentialId: id)) {
                case .ok(let ok): try show(try ok.body.json, session, verb: nil)
                case .default(let status, let problem): throw session.failure(status, problem)
                }
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "update", abstract: "Rename, repoint, reweight, disable or enable a credential.",
            discussion: """
                To replace the Mistral API key itself, use tollgate credentials rotate.

                Example:
                  tollgate credentials update main --tenant acme --weight 3 --status active
                """)
        @Argument(help: "Credential id or name.") var credential: String
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @Option(help: "New name.") var name: String?
        @Option(name: .customLong("base-url"), help: ArgumentHelp("New https URL of the Mistral API.", valueName: "url")) var baseURL: String?
        @Option(help: "New weight, 0-1000.") var weight: Int?
        @Option(help: "New status (a disabled credential is not used).") var status: Schemas.CredentialStatus?
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func validate() throws {
            if name == nil, baseURL == nil, weight == nil, status == nil {
                throw ValidationError("Nothing to change: give --name, --base-url, --weight or --status")
            }
        }

        func run() async throws {
            try await connection.withSession { session in
                let tenantID = try await session.tenantID(tenant)
                let id = try await session.credentialID(credential, tenantID: tenantID)
                let body = Schemas.CredentialUpdate(name: name, baseUrl: baseURL, weight: weight, status: status)
                switch try await session.client.updateCredential(path: .init(tenantId: tenantID, credentialId: id), body: .json(body)) {
                case .ok(let ok): try show(try ok.body.json, session, verb: "Updated")
                case .default(let status, let problem): throw session.failure(status, problem)
                }
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate", abstract: "Replace a credential's Mistral API key (read from stdin or a prompt).",
            discussion: """
                Example:
                  tollgate credentials rotate main --tenant acme < new-mistral-key.txt
                """)
        @Argument(help: "Credential id or name.") var credential: String
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @OptionGroup var refuse: RefuseSecretArguments
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            let secret = try readSecret(prompt: "New Mistral API key for \(credential): ", what: "Mistral API key")
            try await connection.withSession { session in
                let tenantID = try await session.tenantID(tenant)
                let id = try await session.credentialID(credential, tenantID: tenantID)
                switch try await session.client.rotateCredential(path: .init(tenantId: tenantID, credentialId: id),
                                                                 body: .json(.init(secret: secret))) {
                case .ok(let ok): try show(try ok.body.json, session, verb: "Rotated")
                case .default(let status, let problem): throw session.failure(status, problem)
                }
            }
        }
    }

    static func show(_ credential: Schemas.Credential, _ session: Session, verb: String?) throws {
        if session.printer.isJSON { return try session.printer.json(credential) }
        if let verb { say("\(verb) credential \(credential.name) (\(credential.id))") }
        session.printer.details([
            ("id", credential.id), ("name", credential.name), ("status", credential.status.rawValue),
            ("weight", String(credential.weight)), ("key", "…" + credential.last4), ("base url", credential.baseUrl),
            ("created", Format.date(credential.createdAt)), ("updated", Format.date(credential.updatedAt)),
        ])
    }
}
