import Foundation
import Testing
@testable import TollgateDomain

@Suite struct BudgetPeriodTests {
    /// `2026-03-15T23:59:59.999Z`-style literal, parsed without Calendar (so the expectations are
    /// independent of the code under test).
    static func utc(_ text: String) -> Date {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = text.contains(".") ? [.withInternetDateTime, .withFractionalSeconds] : [.withInternetDateTime]
        guard let date = formatter.date(from: text) else { fatalError("bad date literal \(text)") }
        return date
    }

    static func window(_ period: BudgetPeriod, _ instant: String) -> BudgetWindow {
        period.window(containing: utc(instant))
    }

    @Test func dateLiteralsAreWhatWeThinkTheyAre() {
        // Anchors checked with `date -u -d ... +%s` (2026-03-15 is a Sunday, 2026-12-28 a Monday).
        #expect(Self.utc("2026-03-15T00:00:00Z").timeIntervalSince1970 == 1_773_532_800)
        #expect(Self.utc("2026-03-16T00:00:00Z").timeIntervalSince1970 == 1_773_619_200)
        #expect(Self.utc("2026-12-28T00:00:00Z").timeIntervalSince1970 == 1_798_416_000)
        #expect(Self.utc("2028-02-29T00:00:00Z").timeIntervalSince1970 == 1_835_395_200)
    }

    // MARK: Daily

    @Test func dailyBoundary() {
        let late = Self.window(.daily, "2026-03-14T23:59:59.999Z")
        #expect(late.start == Self.utc("2026-03-14T00:00:00Z"))
        #expect(late.end == Self.utc("2026-03-15T00:00:00Z"))
        let midnight = Self.window(.daily, "2026-03-15T00:00:00Z")
        #expect(midnight.start == Self.utc("2026-03-15T00:00:00Z"))
        #expect(midnight.end == Self.utc("2026-03-16T00:00:00Z"))
        #expect(late != midnight)
        #expect(late.end == midnight.start)
    }

    @Test func dailyAcrossYearAndLeapDay() {
        #expect(Self.window(.daily, "2026-12-31T23:59:59.999Z").end == Self.utc("2027-01-01T00:00:00Z"))
        let leap = Self.window(.daily, "2028-02-29T12:00:00Z")
        #expect(leap.start == Self.utc("2028-02-29T00:00:00Z"))
        #expect(leap.end == Self.utc("2028-03-01T00:00:00Z"))
    }

    // MARK: Weekly (ISO weeks, Monday 00:00 UTC)

    @Test func weeklySundayNightVersusMondayMidnight() {
        let sunday = Self.window(.weekly, "2026-03-15T23:59:00Z")
        #expect(sunday.start == Self.utc("2026-03-09T00:00:00Z"))
        #expect(sunday.end == Self.utc("2026-03-16T00:00:00Z"))
        let sundayLast = Self.window(.weekly, "2026-03-15T23:59:59.999Z")
        #expect(sundayLast == sunday)
        let monday = Self.window(.weekly, "2026-03-16T00:00:00Z")
        #expect(monday.start == Self.utc("2026-03-16T00:00:00Z"))
        #expect(monday.end == Self.utc("2026-03-23T00:00:00Z"))
    }

    @Test(arguments: [
        "2026-12-28T00:00:00Z", "2026-12-31T12:00:00Z", "2027-01-01T00:00:00Z", "2027-01-03T23:59:59.999Z",
    ])
    func weeklyAcrossYearBoundary(instant: String) {
        let window = Self.window(.weekly, instant)
        #expect(window.start == Self.utc("2026-12-28T00:00:00Z"))
        #expect(window.end == Self.utc("2027-01-04T00:00:00Z"))
    }

    @Test func weeklyEveryDayOfAWeek() {
        let monday = Self.utc("2026-03-16T00:00:00Z")
        for hour in stride(from: 0, to: 7 * 24, by: 5) {
            let instant = monday.addingTimeInterval(Double(hour) * 3600 + 59)
            #expect(BudgetPeriod.weekly.window(containing: instant).start == monday, "hour \(hour)")
        }
    }

    // MARK: Monthly

    @Test func monthlyLeapFebruary() {
        let feb = Self.window(.monthly, "2028-02-29T23:59:59.999Z")
        #expect(feb.start == Self.utc("2028-02-01T00:00:00Z"))
        #expect(feb.end == Self.utc("2028-03-01T00:00:00Z"))
        #expect(feb.end!.timeIntervalSince(feb.start) == 29 * 86_400)
        let nonLeap = Self.window(.monthly, "2027-02-10T00:00:00Z")
        #expect(nonLeap.end!.timeIntervalSince(nonLeap.start) == 28 * 86_400)
        let march = Self.window(.monthly, "2028-03-01T00:00:00Z")
        #expect(march.start == Self.utc("2028-03-01T00:00:00Z"))
        #expect(march.end == Self.utc("2028-04-01T00:00:00Z"))
    }

    @Test func monthlyDecemberToJanuary() {
        let december = Self.window(.monthly, "2026-12-31T23:59:59.999Z")
        #expect(december.start == Self.utc("2026-12-01T00:00:00Z"))
        #expect(december.end == Self.utc("2027-01-01T00:00:00Z"))
        let january = Self.window(.monthly, "2027-01-01T00:00:00Z")
        #expect(january.start == Self.utc("2027-01-01T00:00:00Z"))
        #expect(january.end == Self.utc("2027-02-01T00:00:00Z"))
    }

    // MARK: Lifetime

    @Test func lifetimeHasOneOpenWindow() {
        let a = BudgetPeriod.lifetime.window(containing: Date())
        let b = BudgetPeriod.lifetime.window(containing: Self.utc("2090-06-01T00:00:00Z"))
        #expect(a == b)
        #expect(a.start == Date(timeIntervalSince1970: 0))
        #expect(a.end == nil)
        #expect(a.contains(Date()))
        #expect(a.contains(Date.distantFuture))
        #expect(a.contains(Date(timeIntervalSince1970: 0)))
    }

    // MARK: Properties over random instants (arithmetic reference, no Calendar)

    @Test func windowsMatchArithmeticReference() {
        var rng = PeriodRNG(seed: 2026)
        let day = 86_400.0
        for _ in 0..<5_000 {
            // 1970 ... 2200, millisecond precision.
            let millis = Int64.random(in: 0...7_258_118_400_000, using: &rng)
            let instant = Date(timeIntervalSince1970: Double(millis) / 1000)
            let seconds = millis / 1000

            let daily = BudgetPeriod.daily.window(containing: instant)
            let dayStart = Double(seconds - seconds % 86_400)
            #expect(daily.start.timeIntervalSince1970 == dayStart, "\(instant)")
            #expect(daily.end?.timeIntervalSince1970 == dayStart + day)

            // 1970-01-05 (4 days after the epoch) was a Monday.
            let weekly = BudgetPeriod.weekly.window(containing: instant)
            let sinceMonday = (seconds - 4 * 86_400) % (7 * 86_400)
            let weekStart = Double(seconds - (sinceMonday < 0 ? sinceMonday + 7 * 86_400 : sinceMonday))
            #expect(weekly.start.timeIntervalSince1970 == weekStart, "\(instant)")
            #expect(weekly.end?.timeIntervalSince1970 == weekStart + 7 * day)

            let monthly = BudgetPeriod.monthly.window(containing: instant)
            let (y, m) = civilYearMonth(daysSinceEpoch: seconds / 86_400)
            #expect(monthly.start.timeIntervalSince1970 == Double(daysFromCivil(y, m, 1)) * day, "\(instant)")
            let (ny, nm) = m == 12 ? (y + 1, 1) : (y, m + 1)
            #expect(monthly.end?.timeIntervalSince1970 == Double(daysFromCivil(ny, nm, 1)) * day, "\(instant)")

            for window in [daily, weekly, monthly] {
                #expect(window.contains(instant))
                #expect(window.contains(window.start))
                #expect(!window.contains(window.end!))
                #expect(!window.contains(window.start.addingTimeInterval(-0.001)))
                #expect(window.contains(window.end!.addingTimeInterval(-0.001)))
            }
        }
    }

    @Test func containsIsHalfOpen() {
        let window = BudgetWindow(start: Date(timeIntervalSince1970: 100), end: Date(timeIntervalSince1970: 200))
        #expect(!window.contains(Date(timeIntervalSince1970: 99.999)))
        #expect(window.contains(Date(timeIntervalSince1970: 100)))
        #expect(window.contains(Date(timeIntervalSince1970: 199.999)))
        #expect(!window.contains(Date(timeIntervalSince1970: 200)))
        let open = BudgetWindow(start: Date(timeIntervalSince1970: 100), end: nil)
        #expect(open.contains(.distantFuture))
        #expect(!open.contains(Date(timeIntervalSince1970: 0)))
    }

    @Test func rawValuesAreStable() {
        #expect(BudgetPeriod.allCases.map(\.rawValue).sorted() == ["daily", "lifetime", "monthly", "weekly"])
    }

    // MARK: Budget.admits

    static let limit = Money(nanos: 1_000_000_000)

    @Test func admitsExactFitAndRefusesOneNanoOver() {
        let budget = Budget(limit: Self.limit, period: .monthly)
        let spent = Money(nanos: 400_000_000), reserved = Money(nanos: 300_000_000)
        #expect(budget.admits(Money(nanos: 300_000_000), spent: spent, reserved: reserved))
        #expect(!budget.admits(Money(nanos: 300_000_001), spent: spent, reserved: reserved))
        #expect(budget.admits(Money(nanos: 299_999_999), spent: spent, reserved: reserved))
        #expect(budget.admits(.zero, spent: Self.limit, reserved: .zero))
        #expect(!budget.admits(Money(nanos: 1), spent: Self.limit, reserved: .zero))
        #expect(!budget.admits(Money(nanos: 1), spent: .zero, reserved: Self.limit))
        #expect(!budget.admits(.zero, spent: Money(nanos: 1_000_000_001), reserved: .zero))
    }

    @Test func zeroLimitAdmitsOnlyZero() {
        let budget = Budget(limit: .zero, period: .daily)
        #expect(budget.admits(.zero, spent: .zero, reserved: .zero))
        #expect(!budget.admits(Money(nanos: 1), spent: .zero, reserved: .zero))
    }

    @Test func refusesNegativeAmounts() {
        let budget = Budget(limit: Self.limit, period: .lifetime)
        #expect(!budget.admits(Money(nanos: -1), spent: .zero, reserved: .zero))
        #expect(!budget.admits(Money(nanos: Int64.min), spent: .zero, reserved: .zero))
        // A negative amount must not "make room" on an exhausted budget.
        #expect(!budget.admits(Money(nanos: -5), spent: Money(nanos: 1_000_000_003), reserved: .zero))
    }

    @Test func refusesOverflowInsteadOfWrapping() {
        let max = Budget(limit: Money(nanos: Int64.max), period: .lifetime)
        #expect(max.admits(Money(nanos: Int64.max), spent: .zero, reserved: .zero))
        #expect(max.admits(Money(nanos: 1), spent: Money(nanos: Int64.max - 1), reserved: .zero))
        #expect(!max.admits(Money(nanos: 1), spent: Money(nanos: Int64.max), reserved: .zero))
        #expect(!max.admits(.zero, spent: Money(nanos: Int64.max), reserved: Money(nanos: 1)))
        #expect(!max.admits(Money(nanos: Int64.max), spent: Money(nanos: Int64.max), reserved: Money(nanos: Int64.max)))
        #expect(!max.admits(Money(nanos: 2), spent: Money(nanos: Int64.max - 1), reserved: .zero))
        let small = Budget(limit: Self.limit, period: .daily)
        #expect(!small.admits(Money(nanos: Int64.max), spent: Money(nanos: 10), reserved: .zero))
    }

    @Test func admitsMatchesWideArithmetic() {
        var rng = PeriodRNG(seed: 77)
        for _ in 0..<20_000 {
            func pick() -> Int64 {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: Int64.random(in: 0...1_000, using: &rng)
                case 1: Int64.random(in: 0...Int64.max, using: &rng)
                case 2: Int64.max - Int64.random(in: 0...1_000, using: &rng)
                default: Int64.random(in: -1_000...1_000, using: &rng)
                }
            }
            let (limit, spent, reserved, amount) = (max(0, pick()), max(0, pick()), max(0, pick()), pick())
            let expected = amount >= 0 && Int128(spent) + Int128(reserved) + Int128(amount) <= Int128(limit)
            let budget = Budget(limit: Money(nanos: limit), period: .monthly)
            #expect(budget.admits(Money(nanos: amount), spent: Money(nanos: spent), reserved: Money(nanos: reserved)) == expected,
                    "limit \(limit) spent \(spent) reserved \(reserved) amount \(amount)")
        }
    }
}

// MARK: - Civil calendar arithmetic (Howard Hinnant's algorithms), independent of Foundation

private func daysFromCivil(_ year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
}

private func civilYearMonth(daysSinceEpoch: Int64) -> (Int64, Int64) {
    let z = daysSinceEpoch + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    return (year, month)
}

private struct PeriodRNG: RandomNumberGenerator {
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
