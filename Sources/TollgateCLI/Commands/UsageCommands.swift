import ArgumentParser
import Foundation
import TollgateAdminAPI

/// `--from` / `--to` of usage commands; default: from the start of the current month (UTC) to now.
struct TimeRangeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Start (inclusive): ISO 8601 date or date-time, or a duration ago (7d). Default: start of this month, UTC.",
                               valueName: "when"), transform: Values.instant)
    var from: Date?
    @Option(help: ArgumentHelp("End (exclusive): ISO 8601 date or date-time, 'now', or a duration ago. Default: now.", valueName: "when"),
            transform: Values.instant)
    var to: Date?

    func validate() throws {
        let (from, to) = range
        if to <= from { throw ValidationError("--to must be after --from") }
        if to.timeIntervalSince(from) > 366 * 86_400 { throw ValidationError("The range may cover at most 366 days") }
    }

    var range: (Date, Date) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let now = Date()
        let monthStart = calendar.date(from: calendar.dateComponents([.year, .month], from: now)) ?? now
        return (from ?? monthStart, to ?? now)
    }
}

struct UsageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Usage and spend of a tenant by key, model or day, and the ledger as CSV.",
        discussion: """
            Ranges are [from, to), at most 366 days; dates are UTC.

            Examples:
              tollgate usage report --tenant acme --by model --from 2026-11-01
              tollgate usage report --tenant acme --by day --from 7d --key app
              tollgate usage export --tenant acme --from 2026-10-01 --to 2026-11-01 \\
                --output-file october.csv
            """,
        subcommands: [Report.self, Export.self])

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "report", abstract: "Requests, tokens and cost grouped by key, model or day.")
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @Option(help: "Group rows by.") var by: Schemas.UsageGrouping = .model
        @Option(help: ArgumentHelp("Only this key (id or name).", valueName: "key")) var key: String?
        @OptionGroup var range: TimeRangeOptions
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                let tenantID = try await session.tenantID(tenant)
                var keyID: String?
                if let key { keyID = try await session.keyID(key, tenantID: tenantID) }
                let (from, to) = range.range
                switch try await session.client.getUsage(path: .init(tenantId: tenantID),
                                                         query: .init(from: from, to: to, groupBy: by, keyId: keyID)) {
                case .ok(let ok):
                    let report = try ok.body.json
                    if session.printer.isJSON { return try session.printer.json(report) }
                    say("Usage of tenant \(tenantID) by \(report.groupBy.rawValue), \(Format.date(report.from)) to \(Format.date(report.to))")
                    let header = report.groupBy == .key ? "KEY" : report.groupBy == .model ? "MODEL" : "DAY"
                    func cells(_ row: Schemas.UsageRow, group: String) -> [String] {
                        [group, String(row.requests), String(row.promptTokens), String(row.completionTokens), String(row.cachedTokens),
                         Format.money(row.cost, report.currency), String(row.estimatedRequests)]
                    }
                    var rows = report.rows.map { cells($0, group: $0.group) }
                    if !rows.isEmpty { rows.append(cells(report.total, group: "TOTAL")) }
                    session.printer.table([header, "REQUESTS", "PROMPT TOKENS", "COMPLETION TOKENS", "CACHED TOKENS", "COST", "ESTIMATED"],
                                          rows, empty: "No usage in this range.")
                case .default(let code, let problem): throw session.failure(code, problem)
                }
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export", abstract: "Ledger rows (one per request) as CSV, to stdout or a file.",
            discussion: """
                Example:
                  tollgate usage export --tenant acme --from 2026-10-01 \\
                    --to 2026-11-01 > october.csv
                """)
        @Option(help: ArgumentHelp("Tenant id or slug (default: the caller's own tenant).", valueName: "tenant")) var tenant: String?
        @OptionGroup var range: TimeRangeOptions
        @Option(name: .customLong("output-file"), help: ArgumentHelp("Write the CSV to this file instead of stdout.", valueName: "path"))
        var outputFile: String?
        @OptionGroup(title: "Connection") var connection: ServerOptions

        func run() async throws {
            try await connection.withSession(format: .table) { session in
                let tenantID = try await session.tenantID(tenant)
                let (from, to) = range.range
                switch try await session.client.exportUsage(path: .init(tenantId: tenantID), query: .init(from: from, to: to)) {
                case .ok(let ok):
                    guard case .csv(let body) = ok.body else { return }
                    let env = CLIEnvironment.current
                    if let outputFile {
                        guard FileManager.default.createFile(atPath: outputFile, contents: nil),
                              let handle = FileHandle(forWritingAtPath: outputFile)
                        else { throw CLIError.failure("Cannot write \(outputFile)") }
                        defer { try? handle.close() }
                        var bytes = 0
                        for try await chunk in body {
                            try handle.write(contentsOf: Data(chunk))
                            bytes += chunk.count
                        }
                        warn("Wrote \(bytes) bytes to \(outputFile)")
                    } else {
                        for try await chunk in body { env.standardOutput(Data(chunk)) }
                    }
                case .default(let code, let problem): throw session.failure(code, problem)
                }
            }
        }
    }
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "The audit log: who changed what, newest first.",
        discussion: """
            Examples:
              tollgate audit list --tenant acme --limit 20
              tollgate audit list --action key.revoke --all -o json
            """,
        subcommands: [ListAudit.self])

    struct ListAudit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List audit entries (platform admins see every tenant's, tenant tokens their own).",
            aliases: ["ls"])
        @Option(help: ArgumentHelp("Only this tenant's entries (id or slug).", valueName: "tenant")) var tenant: String?
        @Option(help: ArgumentHelp("Only this action, e.g. key.create, key.revoke, tenant.suspend.", valueName: "action")) var action: String?
        @OptionGroup(title: "Paging") var page: PageOptions
        @OptionGroup(title: "Connection and output") var connection: ConnectionOptions

        func run() async throws {
            try await connection.withSession { session in
                var tenantID: String?
                if let tenant { tenantID = try await session.tenantID(tenant) }
                let result = try await page.collect { limit, cursor in
                    switch try await session.client.listAudit(query: .init(limit: limit, cursor: cursor, tenantId: tenantID, action: action)) {
                    case .ok(let ok): let page = try ok.body.json; return (page.data, page.nextCursor)
                    case .default(let code, let problem): throw session.failure(code, problem)
                    }
                }
                if session.printer.isJSON { return try session.printer.page(result.items, nextCursor: result.nextCursor) }
                session.printer.table(
                    ["TIME", "ACTION", "TARGET", "ACTOR", "TENANT", "CHANGES"],
                    result.items.map { entry in
                        [Format.date(entry.createdAt), entry.action, entry.targetType + (entry.targetId.map { " " + $0 } ?? ""),
                         entry.actorRole ?? "-", entry.tenantId ?? "-", truncate(Format.json(entry.diff), 60)]
                    }, empty: "No audit entries.", nextCursor: result.nextCursor)
            }
        }
    }
}

func truncate(_ text: String, _ length: Int) -> String {
    text.count <= length ? text : String(text.prefix(length - 1)) + "…"
}
