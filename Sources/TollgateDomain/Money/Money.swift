/// An exact amount of money in nano-units (10⁻⁹) of a tenant's currency.
///
/// Floating point is never used for money: a cached input token of a $0.10-per-million model costs
/// 10 nano-dollars, which micro-units would round to zero. `Int64` nanos cover ±9.2 billion units.
public struct Money: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let nanosPerUnit: Int64 = 1_000_000_000
    public static let zero = Money(nanos: 0)

    public var nanos: Int64

    public init(nanos: Int64) { self.nanos = nanos }

    public static func < (lhs: Money, rhs: Money) -> Bool { lhs.nanos < rhs.nanos }

    /// Parses a plain decimal such as `25`, `25.5` or `0.000000010` (at most 9 decimals, no sign,
    /// no exponent, no separators) exactly, without going through floating point.
    public init(decimal text: String) throws(MoneyError) {
        let parts = text.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = parts.first, !whole.isEmpty,
              whole.allSatisfy(\.isASCIIDigit) else { throw .malformed(text) }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard parts.count == 1 || !fraction.isEmpty, fraction.allSatisfy(\.isASCIIDigit) else {
            throw .malformed(text)
        }
        guard fraction.count <= 9 else { throw .tooPrecise(text) }
        guard let units = Int64(whole) else { throw .outOfRange(text) }
        let paddedFraction = fraction + String(repeating: "0", count: 9 - fraction.count)
        let fractionNanos = Int64(paddedFraction) ?? 0
        let (scaled, overflow) = units.multipliedReportingOverflow(by: Money.nanosPerUnit)
        let (total, overflow2) = scaled.addingReportingOverflow(fractionNanos)
        guard !overflow, !overflow2 else { throw .outOfRange(text) }
        self.nanos = total
    }

    /// The exact decimal form with at least two and at most nine decimals: `25.00`, `0.00000001`.
    public var decimalString: String {
        let sign = nanos < 0 ? "-" : ""
        let magnitude = nanos.magnitude
        let units = magnitude / UInt64(Money.nanosPerUnit)
        var fraction = String(magnitude % UInt64(Money.nanosPerUnit))
        fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
        while fraction.count > 2, fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(sign)\(units).\(fraction)"
    }

    public var description: String { decimalString }

    public func formatted(in currency: Currency) -> String { "\(decimalString) \(currency.rawValue)" }
}

public enum MoneyError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case tooPrecise(String)
    case outOfRange(String)

    public var description: String {
        switch self {
        case .malformed(let text): "'\(text)' is not a plain decimal amount such as 25 or 25.50"
        case .tooPrecise(let text): "'\(text)' has more than 9 decimals (amounts are exact to 10^-9)"
        case .outOfRange(let text): "'\(text)' is too large"
        }
    }
}

public enum Currency: String, Sendable, Hashable, CaseIterable, Codable {
    case eur = "EUR"
    case usd = "USD"
}

extension Character {
    var isASCIIDigit: Bool { asciiValue.map { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ?? false }
}
