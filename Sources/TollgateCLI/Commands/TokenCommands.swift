import ArgumentParser
import Foundation
import TollgateAdminAPI

enum TokenRoleArgument: String, ExpressibleByArgument, CaseIterable, Sendable {
    case admin, viewer

    init?(argument: String) {
        switch argument.lowercased() {
        case "admin", "tenant_admin", "tenant-admin": self = .admin
        case "viewer", "tenant_viewer", "tenant-viewer": self = .viewer
        default: return nil
        }
    }

    var api: Schemas.TenantTokenCreate.RolePayload { self == .admin ? .tenantAdmin : .tenantViewer }
}

func tokenDetails(_ token: Schemas.AdminToken) -> [(String, String)] {
    [
        ("id", token.id), ("name", token.name), ("role", token.role.rawValue), ("tenant", Format.optional(token.tenantId)),
        ("prefix", token.displayPrefix + "…"), ("expires", Format.date(token.expiresAt)),
        ("last used", Format.date(token.lastUsedAt)), ("revoked", Format.date(token.revokedAt)),
        ("created", Format.date(token.createdAt)),
    ]
}

struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "Mint, list, show and revoke admin tokens (platform admins, tenant admins, tenant viewers).",
        discussion: """
            A minted token is printed once; Tollgate keeps only its hash.

            Examples:
              tollgate tokens create --tenant acme --role viewer --name grafana --expires 90d
              tollgate tokens create --platform --name ci --expires 30d
              tollgate tokens list --tenant acme
              tollgate tokens revoke 6f1c…
            """,
        subcommands: [Create.self, ListTokens.self, Get.self, Revoke.self, Whoami.self],
        aliases: ["token"])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Mint an admin token (printed once).",
            discussion: """
                With --platform: a platform-admin token (platform admins only). Otherwise a token for one tenant \
                (--tenant, default: the caller's own) with --role admin (manage the tenant) or viewer (read-only).

                Example:
                  tollgate tokens create --tenant acme --role admin --name alice \\
                    --expires 30d -o json | jq -r .token
                """)
        @Option(help: "A name for the token (who or what uses it).") var name: String
        @Flag(help: "Mint a platform-admin token instead of a tenant token.") var platform = false
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @Option(help: "Role of a tenant token: admin manages the tenant, viewer reads.") var role: TokenRoleArgument?
        @Option(help: ArgumentHelp("Expiry: a duration (30d, 12h, 2w) or an ISO 8601 date (default: never).", valueName: "when"),
                transform: Values.expiry)
        var expires: Date?
        @Option(name: .customLong("idempotency-key"), help: ArgumentHelp("Retry-safe creation: the same key replays the first response.", valueName: "key"))
        var idempotencyKey: String?
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func validate() throws {
            if platform, tenant != nil || role != nil { throw ValidationError("--platform cannot be combined with --tenant or --role") }
            if !platform, role == nil { throw ValidationError("--role (admin or viewer) is required for a tenant token; use --platform for a platform-admin token") }
        }

        func run() async throws {
            try await connection.withSession { session in
                let created: Schemas.AdminTokenCreated
                if platform {
                    switch try await session.client.createPlatformToken(
                        headers: .init(idempotencyKey: idempotencyKey), body: .json(.init(name: name, expiresAt: expires))) {
                    case .created(let ok): created = try ok.body.json
                    case .default(let status, let problem): throw session.failure(status, problem)
                    }
                } else {
                    let tenantID = try await session.tenantID(tenant)
                    switch try await session.client.createTenantToken(
                        path: .init(tenantId: tenantID), headers: .init(idempotencyKey: idempotencyKey),
                        body: .json(.init(name: name, role: role!.api, expiresAt: expires))) {
                    case .created(let ok): created = try ok.body.json
                    case .default(let status, let problem): throw session.failure(status, problem)
                    }
                }
                if session.printer.isJSON { return try session.printer.json(created) }
                say("Created \(created.adminToken.role.rawValue) token \(created.adminToken.id) (\(created.adminToken.name))")
                session.printer.details(tokenDetails(created.adminToken))
                session.printer.oneTimeSecret("Admin token", created.token)
            }
        }
    }

    struct ListTokens: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List a tenant's tokens, or platform tokens with --platform.", aliases: ["ls"])
        @Flag(help: "List platform-admin tokens.") var platform = false
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @OptionGroup(title: "Paging") var page: PageOptions
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func validate() throws {
            if platform, tenant != nil { throw ValidationError("--platform cannot be combined with --tenant") }
        }

        func run() async throws {
            try await connection.withSession { session in
                let tenantID = platform ? nil : try await session.tenantID(tenant)
                let result = try await page.collect { limit, cursor in
                    if let tenantID {
                        switch try await session.client.listTenantTokens(path: .init(tenantId: tenantID),
                                                                         query: .init(limit: limit, cursor: cursor)) {
                        case .ok(let ok): let page = try ok.body.json; return (page.data, page.nextCursor)
                        case .default(let status, let problem): throw session.failure(status, problem)
                        }
                    }
                    switch try await session.client.listPlatformTokens(query: .init(limit: limit, cursor: cursor)) {
                    case .ok(let ok): let page = try ok.body.json; return (page.data, page.nextCursor)
                    case .default(let status, let problem): throw session.failure(status, problem)
                    }
                }
                if session.printer.isJSON { return try session.printer.page(result.items, nextCursor: result.nextCursor) }
                session.printer.table(
                    ["ID", "NAME", "ROLE", "PREFIX", "STATUS", "EXPIRES", "LAST USED", "CREATED"],
                    result.items.map { token in
                        [token.id, token.name, token.role.rawValue, token.displayPrefix + "…", tokenStatus(token),
                         Format.date(token.expiresAt), Format.date(token.lastUsedAt), Format.date(token.createdAt)]
                    }, empty: "No tokens.", nextCursor: result.nextCursor)
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Show an admin token (never its secret).",
                                                        aliases: ["show"])
        @Argument(help: "Token id.") var id: String
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                switch try await session.client.getAdminToken(path: .init(tokenId: id)) {
                case .ok(let ok):
                    let token = try ok.body.json
                    if session.printer.isJSON { return try session.printer.json(token) }
                    session.printer.details(tokenDetails(token))
                case .default(let status, let problem): throw session.failure(status, problem)
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke an admin token at once.")
        @Argument(help: "Token id.") var id: String
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                switch try await session.client.revokeAdminToken(path: .init(tokenId: id)) {
                case .ok(let ok):
                    let token = try ok.body.json
                    if session.printer.isJSON { return try session.printer.json(token) }
                    say("Revoked token \(token.id) (\(token.name))")
                case .default(let status, let problem): throw session.failure(status, problem)
                }
            }
        }
    }

    struct Whoami: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "whoami", abstract: "Show the admin token in use (same as tollgate whoami).")
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { try await WhoamiCommand.show($0) }
        }
    }
}

func tokenStatus(_ token: Schemas.AdminToken) -> String {
    if token.revokedAt != nil { return "revoked" }
    if let expires = token.expiresAt, expires <= Date() { return "expired" }
    return "active"
}
