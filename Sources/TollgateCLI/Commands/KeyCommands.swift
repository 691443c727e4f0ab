import ArgumentParser
import Foundation
import OpenAPIRuntime
import TollgateAdminAPI

/// Allow-lists and settings shared by `keys create` and `keys update`.
struct KeySettingsOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Expiry: a duration (30d, 12h, 2w) or an ISO 8601 date.", valueName: "when"), transform: Values.expiry)
    var expires: Date?
    @Option(help: ArgumentHelp("Allowed models, comma-separated ids or globs ('mistral-small-*,codestral-latest'); '' allows every model.",
                               valueName: "list"), transform: Values.models)
    var models: [String]?
    @Option(help: ArgumentHelp("Allowed endpoint families, comma-separated (chat, fim, embeddings, moderations, classifications, agents, conversations, ocr, models, files, batch); '' allows all but batch.",
                               valueName: "list"), transform: Values.endpoints)
    var endpoints: [Schemas.EndpointFamily]?
    @Option(help: ArgumentHelp("Credentials the key may use, comma-separated ids or names; '' means all of the tenant's.", valueName: "list"),
            transform: Values.list)
    var credentials: [String]?
    @Option(help: ArgumentHelp("Metadata entry key=value, repeatable (replaces all metadata).", valueName: "key=value"),
            transform: Values.metadataPair)
    var metadata: [MetadataPair] = []
    @Option(name: .customLong("default-max-tokens"), help: ArgumentHelp("max_tokens set on requests that send none (bounds the budget hold).", valueName: "n"))
    var defaultMaxTokens: Int?

    var isEmpty: Bool {
        expires == nil && models == nil && endpoints == nil && credentials == nil && metadata.isEmpty && defaultMaxTokens == nil
    }

    func credentialIDs(_ session: Session, tenantID: String) async throws -> [String]? {
        guard let credentials else { return nil }
        var ids: [String] = []
        for reference in credentials { ids.append(try await session.credentialID(reference, tenantID: tenantID)) }
        return ids
    }
}

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Mint, list, show, update, rotate and revoke virtual keys.",
        discussion: """
            A virtual key (tg_live_…) is what applications send instead of the Mistral API key. It is printed once, \
            when minted or rotated; Tollgate keeps only its hash. A KEY argument is an id or an exact name.

            Examples:
              tollgate keys create --tenant acme --name app \\
                --budget 25.00 --period monthly --rpm 60 --tpm 200000 \\
                --max-concurrent 4 --models 'mistral-small-*,codestral-latest' \\
                --endpoints chat,embeddings --expires 30d
              tollgate keys list --tenant acme --status active
              tollgate keys rotate app --tenant acme --grace 1h
              tollgate keys revoke app --tenant acme
            """,
        subcommands: [Create.self, ListKeys.self, Show.self, Update.self, Rotate.self, Revoke.self],
        aliases: ["key"])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Mint a virtual key (printed once).",
            discussion: """
                Budgets and limits can also be set later (tollgate budget set / tollgate limits set --key).

                Example:
                  tollgate keys create --tenant acme --name app --budget 25.00 \\
                    --period monthly --rpm 60 --expires 30d
                """)
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @Option(help: "A name for the key.") var name: String
        @OptionGroup(title: "Allow-lists and settings") var settings: KeySettingsOptions
        @OptionGroup(title: "Budget") var budget: BudgetOptions
        @OptionGroup(title: "Limits") var limits: LimitOptions
        @Option(name: .customLong("idempotency-key"), help: ArgumentHelp("Retry-safe creation: the same key replays the first response.", valueName: "key"))
        var idempotencyKey: String?
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let tenantID = try await session.tenantID(tenant)
                let body = Schemas.KeyCreate(
                    name: name, expiresAt: settings.expires, models: settings.models, endpoints: settings.endpoints,
                    credentialIds: try await settings.credentialIDs(session, tenantID: tenantID),
                    metadata: settings.metadata.isEmpty ? nil : .init(additionalProperties: try Values.metadata(settings.metadata)),
                    budget: budget.api, limits: limits.isEmpty ? nil : limits.applied(),
                    defaultMaxTokens: settings.defaultMaxTokens)
                switch try await session.client.createKey(path: .init(tenantId: tenantID), headers: .init(idempotencyKey: idempotencyKey),
                                                          body: .json(body)) {
                case .created(let created):
                    try await showMinted(try created.body.json, session, tenantID: tenantID, verb: "Created")
                case .default(let status, let problem): throw session.failure(status, problem)
                }
            }
        }
    }

    struct ListKeys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List a tenant's keys.", aliases: ["ls"])
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @Option(help: "Only keys with this status.") var status: Schemas.KeyStatus?
        @Option(help: ArgumentHelp("Only keys whose name starts with this text.", valueName: "prefix")) var name: String?
        @OptionGroup(title: "Paging") var page: PageOptions
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let tenantID = try await session.tenantID(tenant)
                let result = try await page.collect { limit, cursor in
                    switch try await session.client.listKeys(path: .init(tenantId: tenantID),
                                                             query: .init(limit: limit, cursor: cursor, status: status, name: name)) {
                    case .ok(let ok): let page = try ok.body.json; return (page.data, page.nextCursor)
                    case .default(let status, let problem): throw session.failure(status, problem)
                    }
                }
                if session.printer.isJSON { return try session.printer.page(result.items, nextCursor: result.nextCursor) }
                let currency = result.items.isEmpty ? nil : try await session.tenant(tenantID).currency
                session.printer.table(
                    ["ID", "NAME", "STATUS", "PREFIX", "BUDGET", "LIMITS", "MODELS", "EXPIRES"],
                    result.items.map { key in
                        [key.id, key.name, key.status.rawValue, key.displayPrefix + "…", Format.budget(key.budget, currency),
                         Format.limits(key.limits), Format.list(key.models, emptyMeaning: "all"), Format.date(key.expiresAt)]
                    }, empty: "No keys.", nextCursor: result.nextCursor)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a key (never its secret).", aliases: ["get"])
        @Argument(help: "Key id or name.") var key: String
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let tenantID = try await session.tenantID(tenant)
                let id = try await session.keyID(key, tenantID: tenantID)
                switch try await session.client.getKey(path: .init(tenantId: tenantID, keyId: id)) {
                case .ok(let ok): try await show(try ok.body.json, session, tenantID: tenantID, verb: nil)
                case .default(let status, let problem): throw session.failure(status, problem)
                }
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "update", abstract: "Change a key's name, expiry, allow-lists, credentials, metadata or default max_tokens.",
            discussion: """
                Only the options given change. Budgets and limits: tollgate budget set --key, tollgate limits set --key.

                Example:
                  tollgate keys update app --tenant acme --models 'mistral-large-*' \\
                    --expires 2027-01-01
                """)
        @Argument(help: "Key id or name.") var key: String
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @Option(help: "New name.") var name: String?
        @OptionGroup(title: "Allow-lists and settings") var settings: KeySettingsOptions
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func validate() throws {
            if name == nil, settings.isEmpty {
                throw ValidationError("Nothing to change: give --name, --expires, --models, --endpoints, --credentials, --metadata or --default-max-tokens")
            }
        }

        func run() async throws {
            try await connection.withSession { session in
                let tenantID = try await session.tenantID(tenant)
                let id = try await session.keyID(key, tenantID: tenantID)
                let body = Schemas.KeyUpdate(
                    name: name, expiresAt: settings.expires, models: settings.models, endpoints: settings.endpoints,
                    credentialIds: try await settings.credentialIDs(session, tenantID: tenantID),
                    metadata: settings.metadata.isEmpty ? nil : .init(additionalProperties: try Values.metadata(settings.metadata)),
                    defaultMaxTokens: settings.defaultMaxTokens)
                switch try await session.client.updateKey(path: .init(tenantId: tenantID, keyId: id), body: .json(body)) {
                case .ok(let ok): try await show(try ok.body.json, session, tenantID: tenantID, verb: "Updated")
                case .default(let status, let problem): throw session.failure(status, problem)
                }
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate", abstract: "Issue a new secret for a key (printed once); the old one works for a grace period.",
            discussion: """
                Example:
                  tollgate keys rotate app --tenant acme --grace 1h   # old one: 1 more hour
                  tollgate keys rotate app --tenant acme --grace 0    # old one: dead now
                """)
        @Argument(help: "Key id or name.") var key: String
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @Option(help: ArgumentHelp("How long the previous secret keeps working: 0 to 30d (default: 1h).", valueName: "duration"),
                transform: Values.durationSeconds)
        var grace: Int?
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func validate() throws {
            if let grace, grace > 2_592_000 { throw ValidationError("--grace must be at most 30d") }
        }

        func run() async throws {
            try await connection.withSession { session in
                let tenantID = try await session.tenantID(tenant)
                let id = try await session.keyID(key, tenantID: tenantID)
                switch try await session.client.rotateKey(path: .init(tenantId: tenantID, keyId: id),
                                                          body: .json(.init(gracePeriodSeconds: grace))) {
                case .ok(let ok): try await showMinted(try ok.body.json, session, tenantID: tenantID, verb: "Rotated")
                case .default(let status, let problem): throw session.failure(status, problem)
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a key at once (its current and previous secrets).")
        @Argument(help: "Key id or name.") var key: String
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let tenantID = try await session.tenantID(tenant)
                let id = try await session.keyID(key, tenantID: tenantID)
                switch try await session.client.revokeKey(path: .init(tenantId: tenantID, keyId: id)) {
                case .ok(let ok):
                    let key = try ok.body.json
                    if session.printer.isJSON { return try session.printer.json(key) }
                    say("Revoked key \(key.name) (\(key.id)) at \(Format.date(key.revokedAt))")
                case .default(let status, let problem): throw session.failure(status, problem)
                }
            }
        }
    }

    static func showMinted(_ created: Schemas.KeyCreated, _ session: Session, tenantID: String, verb: String) async throws {
        if session.printer.isJSON { return try session.printer.json(created) }
        try await show(created.key, session, tenantID: tenantID, verb: verb)
        session.printer.oneTimeSecret("Virtual key", created.secret)
    }

    static func show(_ key: Schemas.Key, _ session: Session, tenantID: String, verb: String?) async throws {
        if session.printer.isJSON { return try session.printer.json(key) }
        let currency = try await session.tenant(tenantID).currency
        if let verb { say("\(verb) key \(key.name) (\(key.id))") }
        var rows: [(String, String)] = [
            ("id", key.id), ("name", key.name), ("status", key.status.rawValue), ("prefix", key.displayPrefix + "…"),
            ("tenant", tenantID), ("expires", Format.date(key.expiresAt)),
            ("models", Format.list(key.models, emptyMeaning: "all")),
            ("endpoints", Format.list(key.endpoints.map(\.rawValue), emptyMeaning: "all except batch")),
            ("credentials", Format.list(key.credentialIds, emptyMeaning: "all of the tenant's")),
            ("metadata", Format.json(key.metadata)), ("budget", Format.budget(key.budget, currency)),
            ("limits", Format.limits(key.limits)),
            ("default max tokens", key.defaultMaxTokens.map(String.init) ?? "server default"),
        ]
        if let until = key.previousSecretValidUntil { rows.append(("previous secret valid until", Format.date(until))) }
        if let revoked = key.revokedAt { rows.append(("revoked", Format.date(revoked))) }
        rows += [("created", Format.date(key.createdAt)), ("updated", Format.date(key.updatedAt))]
        session.printer.details(rows)
    }
}
