import ArgumentParser
import Foundation
import TollgateAdminAPI

/// Which price table: the platform's (--platform, or a platform token without --tenant) or a tenant's.
struct PriceScopeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A tenant's prices (id or slug). Default: the caller's own tenant for tenant tokens, the platform table for platform admins.",
                               valueName: "tenant"))
    var tenant: String?
    @Flag(help: "The platform price table (even with a tenant token).") var platform = false

    func validate() throws {
        if platform, tenant != nil { throw ValidationError("--platform cannot be combined with --tenant") }
    }

    /// The tenant id, or nil for the platform table.
    func tenantID(_ session: Session) async throws -> String? {
        if platform { return nil }
        if let tenant { return try await session.tenantID(tenant) }
        return try await session.ownTenantID()
    }
}

struct PriceOptions: ParsableArguments {
    @Option(name: .customLong("input-per-million"), help: ArgumentHelp("Price of one million input tokens.", valueName: "amount"),
            transform: Values.money)
    var input: String
    @Option(name: .customLong("output-per-million"), help: ArgumentHelp("Price of one million output tokens.", valueName: "amount"),
            transform: Values.money)
    var output: String
    @Option(name: .customLong("cached-input-per-million"),
            help: ArgumentHelp("Price of one million cached input tokens (default: 10 % of the input price).", valueName: "amount"),
            transform: Values.money)
    var cachedInput: String?
    @Option(name: .customLong("per-page"), help: ArgumentHelp("Price per page (OCR).", valueName: "amount"), transform: Values.money)
    var perPage: String?

    var api: Schemas.PriceSet {
        .init(inputPerMillion: input, outputPerMillion: output, cachedInputPerMillion: cachedInput, perPage: perPage)
    }
}

struct PricesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prices",
        abstract: "List, set and delete model prices: the platform table and per-tenant overrides.",
        discussion: """
            Prices are exact decimals per million tokens. Platform prices exist per currency (--currency); a tenant's \
            overrides are in the tenant's currency. Without --tenant or --platform, tenant tokens address their own \
            tenant and platform admins the platform table.

            Examples:
              tollgate prices set mistral-small-latest --currency EUR \\
                --input-per-million 0.10 --output-per-million 0.30
              tollgate prices set mistral-small-latest --tenant acme \\
                --input-per-million 0.08 --output-per-million 0.25
              tollgate prices list --tenant acme
              tollgate prices delete mistral-small-latest --tenant acme
            """,
        subcommands: [ListPrices.self, SetPrice.self, Delete.self],
        aliases: ["price"])

    struct ListPrices: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List prices: the platform table, or those in force for a tenant.", aliases: ["ls"])
        @OptionGroup var scope: PriceScopeOptions
        @Option(help: "Platform table only: just this currency.") var currency: CurrencyArgument?
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let tenantID = try await scope.tenantID(session)
                if tenantID != nil, currency != nil {
                    throw CLIError.usage("--currency applies to the platform table; a tenant's prices are in its currency")
                }
                let prices: [Schemas.Price]
                if let tenantID {
                    switch try await session.client.listTenantPrices(path: .init(tenantId: tenantID)) {
                    case .ok(let ok): prices = try ok.body.json.data
                    case .default(let code, let problem): throw session.failure(code, problem)
                    }
                } else {
                    switch try await session.client.listPrices(query: .init(currency: currency?.api)) {
                    case .ok(let ok): prices = try ok.body.json.data
                    case .default(let code, let problem): throw session.failure(code, problem)
                    }
                }
                if session.printer.isJSON { return try session.printer.json(Schemas.PriceList(data: prices)) }
                session.printer.table(
                    ["MODEL", "SCOPE", "INPUT/1M", "OUTPUT/1M", "CACHED INPUT/1M", "PER PAGE"],
                    prices.map { p in
                        [p.model, p.scope.rawValue, Format.money(p.inputPerMillion, p.currency), Format.money(p.outputPerMillion, p.currency),
                         Format.money(p.cachedInputPerMillion, p.currency), Format.money(p.perPage, p.currency)]
                    }, empty: "No prices.")
            }
        }
    }

    struct SetPrice: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Create or replace a model's price (platform table or tenant override).",
            discussion: """
                Example:
                  tollgate prices set codestral-latest --currency EUR \\
                    --input-per-million 0.30 --output-per-million 0.90
                """)
        @Argument(help: "Model id.") var model: String
        @OptionGroup var scope: PriceScopeOptions
        @Option(help: "Currency of a platform price (required for those).") var currency: CurrencyArgument?
        @OptionGroup(title: "Price") var price: PriceOptions
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let tenantID = try await scope.tenantID(session)
                let result: Schemas.Price
                if let tenantID {
                    guard currency == nil else {
                        throw CLIError.usage("--currency applies to platform prices; a tenant override is in the tenant's currency")
                    }
                    switch try await session.client.setTenantPrice(path: .init(tenantId: tenantID, model: model), body: .json(price.api)) {
                    case .ok(let ok): result = try ok.body.json
                    case .default(let code, let problem): throw session.failure(code, problem)
                    }
                } else {
                    guard let currency else { throw CLIError.usage("--currency (EUR or USD) is required for a platform price") }
                    switch try await session.client.setPrice(path: .init(currency: currency.api, model: model), body: .json(price.api)) {
                    case .ok(let ok): result = try ok.body.json
                    case .default(let code, let problem): throw session.failure(code, problem)
                    }
                }
                if session.printer.isJSON { return try session.printer.json(result) }
                say("Set \(result.scope.rawValue) price for \(result.model)")
                session.printer.details([
                    ("model", result.model), ("scope", result.scope.rawValue),
                    ("input/1M", Format.money(result.inputPerMillion, result.currency)),
                    ("output/1M", Format.money(result.outputPerMillion, result.currency)),
                    ("cached input/1M", Format.money(result.cachedInputPerMillion, result.currency)),
                    ("per page", Format.money(result.perPage, result.currency)),
                ])
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete", abstract: "Delete a platform price, or a tenant override (the platform price applies again).",
            aliases: ["rm"])
        @Argument(help: "Model id.") var model: String
        @OptionGroup var scope: PriceScopeOptions
        @Option(help: "Currency of a platform price (required for those).") var currency: CurrencyArgument?
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let tenantID = try await scope.tenantID(session)
                if let tenantID {
                    switch try await session.client.deleteTenantPrice(path: .init(tenantId: tenantID, model: model)) {
                    case .noContent: break
                    case .default(let code, let problem): throw session.failure(code, problem)
                    }
                    try session.printer.done("Removed \(model) override; the platform price applies again",
                                             json: ["deleted": "price", "model": model, "tenantId": tenantID])
                } else {
                    guard let currency else { throw CLIError.usage("--currency (EUR or USD) is required for a platform price") }
                    switch try await session.client.deletePrice(path: .init(currency: currency.api, model: model)) {
                    case .noContent: break
                    case .default(let code, let problem): throw session.failure(code, problem)
                    }
                    try session.printer.done("Removed platform price of \(model) in \(currency.rawValue)",
                                             json: ["deleted": "price", "model": model, "currency": currency.rawValue])
                }
            }
        }
    }
}
