import Testing
@testable import TollgateDomain

@Suite struct MoneyTests {
    // MARK: Parsing

    @Test(arguments: [
        ("25", Int64(25_000_000_000)),
        ("25.5", 25_500_000_000),
        ("25.50", 25_500_000_000),
        ("0.000000001", 1),
        ("0.00000001", 10),
        ("0.000000010", 10),
        ("0", 0),
        ("0.0", 0),
        ("000", 0),
        ("007.10", 7_100_000_000),
        ("1.000000000", 1_000_000_000),
        ("1.999999999", 1_999_999_999),
        ("0.15", 150_000_000),
        ("123456.789", 123_456_789_000_000),
        ("9223372036", 9_223_372_036_000_000_000),
        ("9223372036.854775807", Int64.max),
    ])
    func parsesExactly(_ text: String, _ nanos: Int64) throws {
        #expect(try Money(decimal: text) == Money(nanos: nanos))
    }

    @Test(arguments: [
        "", "-1", "+1", "-0", "1e3", "1E3", " 1", "1 ", "1\n", "\t1", "1.", ".5", ".", "..", "1..5", "1.2.3",
        "1,5", "1_000", "1'000", "0x10", "NaN", "inf", "1.-5", "1.+5", "1.5e2", "abc", "1a", "$1",
        "１", "1.５", "٣", "1.٣", "۱", "१", "½", "²", "1\u{00A0}", "\u{FEFF}1",
    ])
    func rejectsMalformed(_ text: String) {
        #expect(throws: MoneyError.malformed(text)) { try Money(decimal: text) }
    }

    /// A digit followed by a combining mark is one `Character` that compares between "0" and "9".
    /// It must still be rejected as malformed, never parsed as a smaller amount.
    @Test(arguments: ["1.5\u{20E3}", "1.\u{0035}\u{0301}", "5\u{20E3}", "1\u{0301}", "1.25\u{0301}"])
    func rejectsDigitsWithCombiningMarks(_ text: String) {
        #expect(throws: MoneyError.malformed(text)) { try Money(decimal: text) }
    }

    @Test(arguments: ["0.0000000001", "1.1234567891", "1.0000000000", "0.00000000000000000001"])
    func rejectsMoreThanNineDecimals(_ text: String) {
        #expect(throws: MoneyError.tooPrecise(text)) { try Money(decimal: text) }
    }

    @Test(arguments: [
        "9223372036.854775808", "9223372036.9", "9223372037", "9223372037.0", "10000000000",
        "9223372036854775807", "9223372036854775808", "99999999999999999999999999999",
    ])
    func rejectsOverflow(_ text: String) {
        #expect(throws: MoneyError.outOfRange(text)) { try Money(decimal: text) }
    }

    // MARK: decimalString

    @Test(arguments: [
        (Int64(0), "0.00"),
        (1, "0.000000001"),
        (10, "0.00000001"),
        (100_000_000, "0.10"),
        (150_000_000, "0.15"),
        (1_000_000_000, "1.00"),
        (1_230_000_000, "1.23"),
        (1_234_000_000, "1.234"),
        (25_000_000_000, "25.00"),
        (25_500_000_000, "25.50"),
        (1_000_000_001, "1.000000001"),
        (Int64.max, "9223372036.854775807"),
        (-1, "-0.000000001"),
        (-25_000_000_000, "-25.00"),
        (-1_500_000_000, "-1.50"),
        (Int64.min, "-9223372036.854775808"),
    ])
    func decimalString(_ nanos: Int64, _ expected: String) {
        #expect(Money(nanos: nanos).decimalString == expected)
        #expect(Money(nanos: nanos).description == expected)
    }

    @Test func decimalStringRoundTripsForRandomAmounts() throws {
        var rng = SeededRNG(seed: 0x6D6F_6E65_79)
        for i in 0..<20_000 {
            // Spread over magnitudes: pick a random number of digits, then a value below 10^digits.
            let digits = Int.random(in: 0...19, using: &rng)
            let bound: Int64 = digits >= 19 ? Int64.max : (0..<digits).reduce(Int64(1)) { acc, _ in acc * 10 }
            let nanos = i == 0 ? Int64.max : Int64.random(in: 0...bound, using: &rng)
            let money = Money(nanos: nanos)
            let text = money.decimalString
            #expect(try Money(decimal: text) == money, "\(nanos) -> \(text)")
            let fraction = text.split(separator: ".")[1]
            #expect((2...9).contains(fraction.count), "\(text)")
            if fraction.count > 2 { #expect(fraction.last != "0", "\(text)") }

            // Negative amounts print with a leading minus and the same digits.
            if nanos > 0 {
                let negative = Money(nanos: -nanos).decimalString
                #expect(negative == "-" + text)
                #expect(try Money(decimal: String(negative.dropFirst())) == money)
            }
        }
    }

    @Test func parseThenPrintIsCanonical() throws {
        let cases = ["25": "25.00", "25.5": "25.50", "007.10": "7.10", "0.000000010": "0.00000001",
                     "1.100000000": "1.10", "0": "0.00"]
        for (input, canonical) in cases {
            #expect(try Money(decimal: input).decimalString == canonical)
        }
    }

    // MARK: Formatting and basics

    @Test func formattedInCurrency() throws {
        #expect(try Money(decimal: "25.5").formatted(in: .usd) == "25.50 USD")
        #expect(Money(nanos: 10).formatted(in: .eur) == "0.00000001 EUR")
        #expect(Money.zero.formatted(in: .eur) == "0.00 EUR")
        #expect(Money(nanos: -1_000_000_000).formatted(in: .usd) == "-1.00 USD")
    }

    @Test func comparableAndZero() {
        #expect(Money.zero == Money(nanos: 0))
        #expect(Money(nanos: 1) > .zero)
        #expect(Money(nanos: -1) < .zero)
        #expect([Money(nanos: 3), Money(nanos: -2), Money(nanos: 1)].sorted() == [Money(nanos: -2), Money(nanos: 1), Money(nanos: 3)])
        #expect(Money.nanosPerUnit == 1_000_000_000)
    }

    @Test func currencyRawValues() {
        #expect(Currency.allCases.map(\.rawValue).sorted() == ["EUR", "USD"])
        #expect(Currency(rawValue: "usd") == nil)
    }

    @Test func errorDescriptionsNameTheInput() {
        #expect(MoneyError.malformed("x1").description.contains("'x1'"))
        #expect(MoneyError.tooPrecise("0.0000000001").description.contains("9 decimals"))
        #expect(MoneyError.outOfRange("1e99").description.contains("too large"))
    }
}

/// SplitMix64: small, seeded, reproducible.
private struct SeededRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
