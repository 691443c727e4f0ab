import Foundation
import TollgateAdminAPI

/// Renders command results: aligned tables and key/value blocks for people, the API's JSON for
/// scripts (`--output json`: the same field names as the admin API, dates in ISO 8601).
struct Printer {
    let format: OutputFormat

    var isJSON: Bool { format == .json }
    private var env: CLIEnvironment { .current }

    func json(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(value)
        env.standardOutput(data + Data("\n".utf8))
    }

    /// A page of a list: `{"data": [...], "nextCursor": "..."}` like the API (no cursor after `--all`).
    func page<Item: Encodable>(_ items: [Item], nextCursor: String?) throws {
        try json(Page(data: items, nextCursor: nextCursor))
    }

    /// An aligned table. Status-like columns are coloured on a terminal.
    func table(_ headers: [String], _ rows: [[String]], empty: String, nextCursor: String? = nil) {
        guard !rows.isEmpty else {
            say(empty)
            return
        }
        let color = env.colorEnabled
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func render(_ cells: [String], header: Bool) -> String {
            var line = ""
            for (index, cell) in cells.enumerated() {
                let last = index == cells.count - 1
                let padded = last ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                var styled = padded
                if color {
                    if header {
                        styled = "\u{1B}[1m\(padded)\u{1B}[0m"
                    } else if headers[index] == "STATUS", let code = Self.statusColor(cell) {
                        styled = "\u{1B}[\(code)m\(padded)\u{1B}[0m"
                    }
                }
                line += styled + (last ? "" : "  ")
            }
            return line
        }
        var text = render(headers, header: true) + "\n"
        for row in rows { text += render(row, header: false) + "\n" }
        env.out(text)
        if let nextCursor { warn("More results: --cursor \(nextCursor) (or --all)") }
    }

    /// `field  value` lines for one object.
    func details(_ rows: [(String, String)]) {
        let width = rows.map(\.0.count).max() ?? 0
        let bold = env.colorEnabled
        var text = ""
        for (label, value) in rows {
            let padded = (label + ":").padding(toLength: width + 1, withPad: " ", startingAt: 0)
            text += (bold ? "\u{1B}[1m\(padded)\u{1B}[0m" : padded) + "  " + value + "\n"
        }
        env.out(text)
    }

    /// Prints a freshly minted secret once, clearly marked.
    func oneTimeSecret(_ label: String, _ secret: String) {
        let marker = env.colorEnabled ? "\u{1B}[1;33m" : ""
        let reset = env.colorEnabled ? "\u{1B}[0m" : ""
        env.out("""

            \(marker)\(label) (shown once):\(reset)
              \(secret)
            \(marker)Store it now; it cannot be shown again.\(reset)

            """)
    }

    /// Short confirmation for operations without a body (204): `{"deleted": true}` in JSON.
    func done(_ message: String, json fields: [String: String]) throws {
        if isJSON { try json(fields) } else { say(message) }
    }

    private static func statusColor(_ status: String) -> String? {
        switch status {
        case "active", "ok": "32"
        case "revoked", "suspended", "unavailable": "31"
        case "expired", "disabled": "33"
        default: nil
        }
    }
}

struct Page<Item: Encodable>: Encodable {
    var data: [Item]
    var nextCursor: String?
}

// MARK: Formatting

enum Format {
    static func date(_ date: Date?) -> String {
        guard let date else { return "-" }
        return date.formatted(.iso8601)
    }

    static func money(_ amount: String?, _ currency: Schemas.Currency?) -> String {
        guard let amount else { return "-" }
        guard let currency else { return amount }
        return "\(amount) \(currency.rawValue)"
    }

    static func budget(_ budget: Schemas.Budget?, _ currency: Schemas.Currency?) -> String {
        guard let budget else { return "none" }
        return "\(money(budget.amount, currency)) \(budget.period.rawValue)"
    }

    static func limits(_ limits: Schemas.Limits?) -> String {
        guard let limits else { return "unlimited" }
        var parts: [String] = []
        if let rpm = limits.requestsPerMinute { parts.append("\(rpm) rpm") }
        if let tpm = limits.tokensPerMinute { parts.append("\(tpm) tpm") }
        if let concurrent = limits.maxConcurrent { parts.append("\(concurrent) concurrent") }
        return parts.isEmpty ? "unlimited" : parts.joined(separator: ", ")
    }

    static func list(_ values: [String], emptyMeaning: String) -> String {
        values.isEmpty ? emptyMeaning : values.joined(separator: ",")
    }

    static func optional(_ value: String?) -> String { value ?? "-" }

    static func json(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
    }
}
