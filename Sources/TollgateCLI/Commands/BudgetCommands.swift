import ArgumentParser
import Foundation
import TollgateAdminAPI

/// `--tenant` and `--key`: budgets and limits belong to a tenant, or to one of its keys with --key.
struct BudgetTargetOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
    @Option(help: ArgumentHelp("A key (id or name) of the tenant; without it, the tenant-wide setting.", valueName: "key")) var key: String?

    /// (tenant id, key id or nil)
    func resolve(_ session: Session) async throws -> (String, String?) {
        let tenantID = try await session.tenantID(tenant)
        guard let key else { return (tenantID, nil) }
        return (tenantID, try await session.keyID(key, tenantID: tenantID))
    }
}

struct BudgetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budget",
        abstract: "Show, set and clear the budget of a tenant or of a key (--key).",
        discussion: """
            Amounts are exact decimals in the tenant's currency. Periods (calendar-aligned, UTC, weeks start on \
            Monday): lifetime, daily, weekly, monthly. A request needs room in both its key's and its tenant's budget.

            Examples:
              tollgate budget set 500.00 --period monthly --tenant acme
              tollgate budget set 25.00 --period daily --tenant acme --key app
              tollgate budget get --tenant acme --key app
              tollgate budget clear --tenant acme --key app
            """,
        subcommands: [Get.self, SetBudget.self, Clear.self])

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "get", abstract: "Show the budget and the current window's spend, holds and remainder.", aliases: ["show"])
        @OptionGroup var target: BudgetTargetOptions
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let (tenantID, keyID) = try await target.resolve(session)
                let status: Schemas.BudgetStatus
                if let keyID {
                    switch try await session.client.getKeyBudget(path: .init(tenantId: tenantID, keyId: keyID)) {
                    case .ok(let ok): status = try ok.body.json
                    case .default(let code, let problem): throw session.failure(code, problem)
                    }
                } else {
                    switch try await session.client.getTenantBudget(path: .init(tenantId: tenantID)) {
                    case .ok(let ok): status = try ok.body.json
                    case .default(let code, let problem): throw session.failure(code, problem)
                    }
                }
                try show(status, session)
            }
        }
    }

    struct SetBudget: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Set (replace) a budget.",
            discussion: """
                Example:
                  tollgate budget set 25.00 --period monthly --tenant acme --key app
                """)
        @Argument(help: ArgumentHelp("Amount in the tenant's currency, an exact decimal (e.g. 25.00).", valueName: "amount"),
                  transform: Values.money)
        var amount: String
        @Option(help: "Budget period, calendar-aligned in UTC.") var period: BudgetPeriodArgument
        @OptionGroup var target: BudgetTargetOptions
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let (tenantID, keyID) = try await target.resolve(session)
                let budget = Schemas.Budget(amount: amount, period: period.api)
                let status: Schemas.BudgetStatus
                if let keyID {
                    switch try await session.client.setKeyBudget(path: .init(tenantId: tenantID, keyId: keyID), body: .json(budget)) {
                    case .ok(let ok): status = try ok.body.json
                    case .default(let code, let problem): throw session.failure(code, problem)
                    }
                } else {
                    switch try await session.client.setTenantBudget(path: .init(tenantId: tenantID), body: .json(budget)) {
                    case .ok(let ok): status = try ok.body.json
                    case .default(let code, let problem): throw session.failure(code, problem)
                    }
                }
                try show(status, session)
            }
        }
    }

    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clear", abstract: "Remove a budget (no cap at that level).", aliases: ["delete"])
        @OptionGroup var target: BudgetTargetOptions
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let (tenantID, keyID) = try await target.resolve(session)
                if let keyID {
                    switch try await session.client.deleteKeyBudget(path: .init(tenantId: tenantID, keyId: keyID)) {
                    case .noContent: break
                    case .default(let code, let problem): throw session.failure(code, problem)
                    }
                } else {
                    switch try await session.client.deleteTenantBudget(path: .init(tenantId: tenantID)) {
                    case .noContent: break
                    case .default(let code, let problem): throw session.failure(code, problem)
                    }
                }
                try session.printer.done(keyID == nil ? "Tenant budget removed" : "Key budget removed",
                                         json: ["deleted": "budget", "tenantId": tenantID, "keyId": keyID ?? ""].filter { !$0.value.isEmpty })
            }
        }
    }

    static func show(_ status: Schemas.BudgetStatus, _ session: Session) throws {
        if session.printer.isJSON { return try session.printer.json(status) }
        session.printer.details([
            ("budget", Format.budget(status.budget, status.currency)),
            ("window", status.windowStart == nil ? "-" : "\(Format.date(status.windowStart)) to \(Format.date(status.windowEnd))"),
            ("spent", Format.money(status.spent, status.currency)),
            ("reserved", Format.money(status.reserved, status.currency)),
            ("remaining", Format.money(status.remaining, status.currency)),
        ])
    }
}

struct LimitsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limits",
        abstract: "Show, set and clear rate and concurrency limits of a tenant or of a key (--key).",
        discussion: """
            Limits: requests per minute (--rpm), tokens per minute (--tpm) and requests in flight (--max-concurrent). \
            A limit left out is unlimited.

            Examples:
              tollgate limits set --tenant acme --key app --rpm 60 --tpm 200000 \\
                --max-concurrent 4
              tollgate limits set --tenant acme --key app --tpm unlimited
              tollgate limits get --tenant acme
              tollgate limits clear --tenant acme --key app
            """,
        subcommands: [Get.self, SetLimits.self, Clear.self])

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "get", abstract: "Show the limits in force.", aliases: ["show"])
        @OptionGroup var target: BudgetTargetOptions
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let (tenantID, keyID) = try await target.resolve(session)
                try show(try await current(session, tenantID, keyID), session)
            }
        }
    }

    struct SetLimits: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Change limits; the ones not given are kept (or removed with --replace).",
            discussion: """
                Reads the current limits, applies the flags given and writes the result. With --replace, limits not \
                given become unlimited. 'unlimited' removes one limit.

                Example:
                  tollgate limits set --tenant acme --key app --rpm 60 --max-concurrent 4
                """)
        @OptionGroup var target: BudgetTargetOptions
        @OptionGroup(title: "Limits") var limits: LimitOptions
        @Flag(help: "Replace all limits: the ones not given become unlimited.") var replace = false
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func validate() throws {
            if limits.isEmpty, !replace { throw ValidationError("Give --rpm, --tpm or --max-concurrent (or use tollgate limits clear)") }
        }

        func run() async throws {
            try await connection.withSession { session in
                let (tenantID, keyID) = try await target.resolve(session)
                let base = replace ? Schemas.Limits() : try await current(session, tenantID, keyID)
                try show(try await put(session, tenantID, keyID, limits.applied(to: base)), session)
            }
        }
    }

    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "clear", abstract: "Remove every limit (unlimited).")
        @OptionGroup var target: BudgetTargetOptions
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let (tenantID, keyID) = try await target.resolve(session)
                try show(try await put(session, tenantID, keyID, Schemas.Limits()), session)
            }
        }
    }

    static func current(_ session: Session, _ tenantID: String, _ keyID: String?) async throws -> Schemas.Limits {
        if let keyID {
            switch try await session.client.getKeyLimits(path: .init(tenantId: tenantID, keyId: keyID)) {
            case .ok(let ok): return try ok.body.json
            case .default(let code, let problem): throw session.failure(code, problem)
            }
        }
        switch try await session.client.getTenantLimits(path: .init(tenantId: tenantID)) {
        case .ok(let ok): return try ok.body.json
        case .default(let code, let problem): throw session.failure(code, problem)
        }
    }

    static func put(_ session: Session, _ tenantID: String, _ keyID: String?, _ limits: Schemas.Limits) async throws -> Schemas.Limits {
        if let keyID {
            switch try await session.client.setKeyLimits(path: .init(tenantId: tenantID, keyId: keyID), body: .json(limits)) {
            case .ok(let ok): return try ok.body.json
            case .default(let code, let problem): throw session.failure(code, problem)
            }
        }
        switch try await session.client.setTenantLimits(path: .init(tenantId: tenantID), body: .json(limits)) {
        case .ok(let ok): return try ok.body.json
        case .default(let code, let problem): throw session.failure(code, problem)
        }
    }

    static func show(_ limits: Schemas.Limits, _ session: Session) throws {
        if session.printer.isJSON { return try session.printer.json(limits) }
        func text(_ value: Int?) -> String { value.map(String.init) ?? "unlimited" }
        session.printer.details([
            ("requests/min", text(limits.requestsPerMinute)), ("tokens/min", text(limits.tokensPerMinute)),
            ("max concurrent", text(limits.maxConcurrent)),
        ])
    }
}
