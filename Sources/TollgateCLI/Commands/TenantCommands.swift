import ArgumentParser
import Foundation
import TollgateAdminAPI

struct WhoamiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whoami", abstract: "Show the admin token in use: its role, tenant and expiry (never the secret).")
    @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

    func run() async throws {
        try await connection.withSession { try await Self.show($0) }
    }

    static func show(_ session: Session) async throws {
        let me = try await session.whoami()
        if session.printer.isJSON { return try session.printer.json(me) }
        session.printer.details(tokenDetails(me))
    }
}

struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Check the admin API: liveness (/healthz) and readiness (/readyz: database and migrations).",
        discussion: "Exits 0 when ready, 1 when the server answers but is not ready, 6 when it cannot be reached.")
    @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

    func run() async throws {
        try await connection.withSession { session in
            let live: Schemas.Health
            switch try await session.client.getHealth() {
            case .ok(let ok): live = try ok.body.json
            case .undocumented(let status, _): throw CLIError.failure("/healthz answered HTTP \(status)")
            }
            let ready: Schemas.Health
            let isReady: Bool
            switch try await session.client.getReadiness() {
            case .ok(let ok): ready = try ok.body.json; isReady = true
            case .serviceUnavailable(let unavailable): ready = try unavailable.body.json; isReady = false
            case .undocumented(let status, _): throw CLIError.failure("/readyz answered HTTP \(status)")
            }
            if session.printer.isJSON {
                try session.printer.json(["health": live, "readiness": ready])
            } else {
                session.printer.details([
                    ("admin url", session.adminURL), ("alive", live.status.rawValue), ("ready", ready.status.rawValue),
                    ("database", Format.optional(ready.database)), ("migrations", Format.optional(ready.migrations)),
                ])
            }
            if !isReady { throw CLIError.failure("The admin API is not ready") }
        }
    }
}

struct TenantsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenants",
        abstract: "Create, list, show, rename, suspend and resume tenants.",
        discussion: """
            A TENANT argument is a tenant id or slug; tenant tokens may leave it out (their own tenant).

            Examples:
              tollgate tenants create acme --name "Acme Corp" --currency EUR \\
                --budget 500.00 --period monthly --rpm 600
              tollgate tenants list --status active
              tollgate tenants suspend acme
            """,
        subcommands: [Create.self, ListTenants.self, Get.self, Update.self, Suspend.self, Resume.self],
        aliases: ["tenant"])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Create a tenant (platform admins).",
            discussion: """
                The slug is 1-63 lower-case letters, digits or '-'. The currency is fixed for the tenant's life: \
                budgets and prices are in it.

                Example:
                  tollgate tenants create acme --name "Acme Corp" --currency EUR \\
                    --budget 500.00 --period monthly
                """)
        @Argument(help: "Slug: 1-63 lower-case letters, digits or '-', starting with a letter or digit.") var slug: String
        @Option(help: "Display name (default: the slug).") var name: String?
        @Option(help: "Currency of the tenant's budgets and prices (fixed).") var currency: CurrencyArgument
        @OptionGroup(title: "Budget") var budget: BudgetOptions
        @OptionGroup(title: "Tenant-wide limits") var limits: LimitOptions
        @Option(name: .customLong("idempotency-key"), help: ArgumentHelp("Retry-safe creation: the same key replays the first response.", valueName: "key"))
        var idempotencyKey: String?
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let body = Schemas.TenantCreate(slug: slug, name: name ?? slug, currency: currency.api, budget: budget.api,
                                                limits: limits.isEmpty ? nil : limits.applied())
                switch try await session.client.createTenant(headers: .init(idempotencyKey: idempotencyKey), body: .json(body)) {
                case .created(let created): try show(try created.body.json, session, verb: "Created")
                case .default(let status, let problem): throw session.failure(status, problem)
                }
            }
        }
    }

    struct ListTenants: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List tenants (a tenant token sees its own).", aliases: ["ls"])
        @Option(help: "Only tenants with this status.") var status: Schemas.TenantStatus?
        @OptionGroup(title: "Paging") var page: PageOptions
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let result = try await page.collect { limit, cursor in
                    switch try await session.client.listTenants(query: .init(limit: limit, cursor: cursor, status: status)) {
                    case .ok(let ok): let page = try ok.body.json; return (page.data, page.nextCursor)
                    case .default(let status, let problem): throw session.failure(status, problem)
                    }
                }
                if session.printer.isJSON { return try session.printer.page(result.items, nextCursor: result.nextCursor) }
                session.printer.table(
                    ["ID", "SLUG", "NAME", "STATUS", "CURRENCY", "BUDGET", "LIMITS", "CREATED"],
                    result.items.map { tenant in
                        [tenant.id, tenant.slug, tenant.name, tenant.status.rawValue, tenant.currency.rawValue,
                         Format.budget(tenant.budget, tenant.currency), Format.limits(tenant.limits), Format.date(tenant.createdAt)]
                    }, empty: "No tenants.", nextCursor: result.nextCursor)
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Show a tenant.", aliases: ["show"])
        @Argument(help: "Tenant id or slug (default: the token's own tenant).") var tenant: String?
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let id = try await session.tenantID(tenant)
                try show(try await session.tenant(id), session, verb: nil)
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "update", abstract: "Rename a tenant.",
            discussion: """
                Budgets and limits have their own commands (tollgate budget, tollgate limits); status changes are \
                tollgate tenants suspend/resume.

                Example:
                  tollgate tenants update acme --name "Acme Corporation"
                """)
        @Argument(help: "Tenant id or slug (default: the token's own tenant).") var tenant: String?
        @Option(help: "New display name.") var name: String
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                try await patch(session, tenant, .init(name: name), verb: "Updated")
            }
        }
    }

    struct Suspend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "suspend", abstract: "Suspend a tenant: its keys stop working at once (platform admins).")
        @Argument(help: "Tenant id or slug.") var tenant: String
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                try await patch(session, tenant, .init(status: .suspended), verb: "Suspended")
            }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "resume", abstract: "Reactivate a suspended tenant (platform admins).")
        @Argument(help: "Tenant id or slug.") var tenant: String
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                try await patch(session, tenant, .init(status: .active), verb: "Resumed")
            }
        }
    }

    static func patch(_ session: Session, _ tenant: String?, _ body: Schemas.TenantUpdate, verb: String) async throws {
        let id = try await session.tenantID(tenant)
        switch try await session.client.updateTenant(path: .init(tenantId: id), body: .json(body)) {
        case .ok(let ok): try show(try ok.body.json, session, verb: verb)
        case .default(let status, let problem): throw session.failure(status, problem)
        }
    }

    static func show(_ tenant: Schemas.Tenant, _ session: Session, verb: String?) throws {
        if session.printer.isJSON { return try session.printer.json(tenant) }
        if let verb { say("\(verb) tenant \(tenant.slug) (\(tenant.id))") }
        session.printer.details([
            ("id", tenant.id), ("slug", tenant.slug), ("name", tenant.name), ("status", tenant.status.rawValue),
            ("currency", tenant.currency.rawValue), ("budget", Format.budget(tenant.budget, tenant.currency)),
            ("limits", Format.limits(tenant.limits)), ("created", Format.date(tenant.createdAt)),
            ("updated", Format.date(tenant.updatedAt)),
        ])
    }
}

extension Schemas.TenantStatus: ExpressibleByArgument {}
extension Schemas.KeyStatus: ExpressibleByArgument {}
extension Schemas.CredentialStatus: ExpressibleByArgument {}
extension Schemas.UsageGrouping: ExpressibleByArgument {}
