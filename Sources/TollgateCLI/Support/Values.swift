import ArgumentParser
import Foundation
import OpenAPIRuntime
import TollgateAdminAPI
import TollgateDomain

// Human-friendly values in, exact values out. Every parser throws a ValidationError naming what is
// accepted, so a bad value is a usage error (exit 2) before anything is sent.

enum Values {
    /// An exact decimal amount (`25`, `25.00`, `0.000000010`): checked with the same rules as the
    /// server (no sign, no exponent, at most 9 decimals, at most 10 integer digits) and sent as typed.
    @Sendable static func money(_ text: String) throws -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        do { _ = try Money(decimal: trimmed) } catch {
            throw ValidationError("\(error.description) (amounts are in the tenant's currency, e.g. 25.00)")
        }
        guard (trimmed.split(separator: ".").first?.count ?? 0) <= 10 else {
            throw ValidationError("'\(text)' is too large (at most 10 integer digits)")
        }
        return trimmed
    }

    /// A duration: a number and a unit, s (seconds), m (minutes), h (hours), d (days) or w (weeks),
    /// optionally combined (`1h30m`). A bare `0` is zero.
    @Sendable static func durationSeconds(_ text: String) throws -> Int {
        let value = text.trimmingCharacters(in: .whitespaces).lowercased()
        if value == "0" { return 0 }
        var total = 0
        var number = ""
        var sawUnit = false
        for character in value {
            if character.isASCII, character.isNumber {
                number.append(character)
                continue
            }
            let unit: Int
            switch character {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86_400
            case "w": unit = 604_800
            default: throw ValidationError("'\(text)' is not a duration such as 30d, 12h, 2w or 90m")
            }
            guard let amount = Int(number) else {
                throw ValidationError("'\(text)' is not a duration such as 30d, 12h, 2w or 90m")
            }
            let (product, overflow) = amount.multipliedReportingOverflow(by: unit)
            guard !overflow, product <= 100 * 365 * 86_400 else { throw ValidationError("'\(text)' is too long") }
            total += product
            number = ""
            sawUnit = true
        }
        guard sawUnit, number.isEmpty else {
            throw ValidationError("'\(text)' is not a duration such as 30d, 12h, 2w or 90m (a unit is required)")
        }
        return total
    }

    /// An ISO 8601 date (`2026-12-31`, midnight UTC) or date-time (`2026-12-31T18:00:00Z`, `…+02:00`).
    static func isoDate(_ text: String) -> Date? {
        let value = text.trimmingCharacters(in: .whitespaces)
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        for options: ISO8601DateFormatter.Options in [
            [.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds], [.withFullDate],
        ] {
            formatter.formatOptions = options
            if let date = formatter.date(from: value) { return date }
        }
        return nil
    }

    /// `--expires`: a duration from now (`30d`, `12h`, `2w`) or an ISO 8601 date or date-time, in the future.
    @Sendable static func expiry(_ text: String) throws -> Date {
        let now = Date()
        let date: Date
        if let absolute = isoDate(text) {
            date = absolute
        } else {
            let seconds: Int
            do { seconds = try durationSeconds(text) } catch {
                throw ValidationError("'\(text)' is neither a duration (30d, 12h, 2w) nor an ISO 8601 date (2026-12-31 or 2026-12-31T18:00:00Z)")
            }
            date = now.addingTimeInterval(TimeInterval(seconds))
        }
        guard date > now else { throw ValidationError("'\(text)' is not in the future") }
        return date
    }

    /// `--from` / `--to`: an ISO 8601 date or date-time, `now`, or a duration ago (`7d` = seven days ago).
    @Sendable static func instant(_ text: String) throws -> Date {
        if text.lowercased() == "now" { return Date() }
        if let absolute = isoDate(text) { return absolute }
        do { return Date().addingTimeInterval(-TimeInterval(try durationSeconds(text))) } catch {
            throw ValidationError("'\(text)' is neither an ISO 8601 date (2026-11-01, 2026-11-01T00:00:00Z), 'now', nor a duration ago (7d)")
        }
    }

    /// A comma-separated list; an empty string is the empty list.
    @Sendable static func list(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// `--models`: exact model ids or globs with `*`; empty allows every model.
    @Sendable static func models(_ text: String) throws -> [String] {
        let models = list(text)
        for model in models {
            guard model.count <= 128,
                  model.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._:/*-".unicodeScalars.contains($0)) })
            else { throw ValidationError("'\(model)' is not a model id or glob (letters, digits, . _ : / - and *)") }
        }
        return models
    }

    /// `--endpoints`: endpoint families; empty allows every family except batch.
    @Sendable static func endpoints(_ text: String) throws -> [Schemas.EndpointFamily] {
        try list(text).map { name in
            guard let family = Schemas.EndpointFamily(rawValue: name.lowercased()) else {
                let known = Schemas.EndpointFamily.allCases.map(\.rawValue).joined(separator: ", ")
                throw ValidationError("'\(name)' is not an endpoint family (one of: \(known))")
            }
            return family
        }
    }

    /// A limit: a positive integer, or `unlimited`.
    @Sendable static func limit(_ text: String) throws -> LimitValue {
        let value = text.trimmingCharacters(in: .whitespaces).lowercased()
        if value == "unlimited" || value == "none" { return .unlimited }
        guard let number = Int(value.replacingOccurrences(of: "_", with: "")), number >= 1 else {
            throw ValidationError("'\(text)' is not a positive integer or 'unlimited'")
        }
        return .value(number)
    }

    /// `--metadata key=value` (string values).
    @Sendable static func metadataPair(_ text: String) throws -> MetadataPair {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw ValidationError("'\(text)' is not key=value")
        }
        return MetadataPair(key: String(text[..<equals]), value: String(text[text.index(after: equals)...]))
    }

    static func metadata(_ pairs: [MetadataPair]) throws -> OpenAPIObjectContainer {
        var dictionary: [String: (any Sendable)?] = [:]
        for pair in pairs { dictionary[pair.key] = pair.value }
        return try OpenAPIObjectContainer(unvalidatedValue: dictionary)
    }
}

enum LimitValue: Equatable, Sendable {
    case unlimited
    case value(Int)

    var number: Int? { if case .value(let n) = self { n } else { nil } }
}

struct MetadataPair: Sendable, Equatable {
    var key: String
    var value: String
}

enum BudgetPeriodArgument: String, ExpressibleByArgument, CaseIterable, Sendable {
    case lifetime, daily, weekly, monthly
    var api: Schemas.BudgetPeriod { Schemas.BudgetPeriod(rawValue: rawValue)! }
}

enum CurrencyArgument: String, ExpressibleByArgument, CaseIterable, Sendable {
    case EUR, USD
    init?(argument: String) { self.init(rawValue: argument.uppercased()) }
    var api: Schemas.Currency { Schemas.Currency(rawValue: rawValue)! }
}

/// `--budget AMOUNT --period PERIOD` on create commands.
struct BudgetOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Budget in the tenant's currency, an exact decimal (e.g. 25.00).", valueName: "amount"),
            transform: Values.money)
    var budget: String?
    @Option(help: ArgumentHelp("Budget period, calendar-aligned in UTC.", valueName: "period"))
    var period: BudgetPeriodArgument?

    func validate() throws {
        if budget != nil, period == nil { throw ValidationError("--budget needs --period (lifetime, daily, weekly or monthly)") }
        if budget == nil, period != nil { throw ValidationError("--period needs --budget") }
    }

    var api: Schemas.Budget? {
        guard let budget, let period else { return nil }
        return Schemas.Budget(amount: budget, period: period.api)
    }
}

/// `--rpm`, `--tpm`, `--max-concurrent`.
struct LimitOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Requests per minute (or 'unlimited').", valueName: "n"), transform: Values.limit)
    var rpm: LimitValue?
    @Option(help: ArgumentHelp("Tokens per minute (or 'unlimited').", valueName: "n"), transform: Values.limit)
    var tpm: LimitValue?
    @Option(name: .customLong("max-concurrent"), help: ArgumentHelp("Requests in flight at once (or 'unlimited').", valueName: "n"),
            transform: Values.limit)
    var maxConcurrent: LimitValue?

    var isEmpty: Bool { rpm == nil && tpm == nil && maxConcurrent == nil }

    /// The limits these flags describe on top of `base` (a flag left out keeps the base value).
    func applied(to base: Schemas.Limits = .init()) -> Schemas.Limits {
        var limits = base
        if let rpm { limits.requestsPerMinute = rpm.number }
        if let tpm { limits.tokensPerMinute = tpm.number }
        if let maxConcurrent { limits.maxConcurrent = maxConcurrent.number }
        return limits
    }
}
