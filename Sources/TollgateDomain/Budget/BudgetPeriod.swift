import Foundation

/// How often a budget resets. Windows are calendar-aligned in UTC: a daily budget resets at 00:00 UTC,
/// a weekly one on Monday 00:00 UTC (ISO 8601 weeks), a monthly one on the 1st at 00:00 UTC.
public enum BudgetPeriod: String, Sendable, Hashable, CaseIterable, Codable {
    case lifetime
    case daily
    case weekly
    case monthly

    /// The window containing `instant`. Lifetime budgets have one window starting at the epoch.
    public func window(containing instant: Date) -> BudgetWindow {
        let calendar = Self.utcCalendar
        switch self {
        case .lifetime:
            return BudgetWindow(start: Date(timeIntervalSince1970: 0), end: nil)
        case .daily:
            let start = calendar.startOfDay(for: instant)
            return BudgetWindow(start: start, end: calendar.date(byAdding: .day, value: 1, to: start)!)
        case .weekly:
            let day = calendar.startOfDay(for: instant)
            // weekday: 1 = Sunday … 7 = Saturday; days since Monday:
            let sinceMonday = (calendar.component(.weekday, from: day) + 5) % 7
            let start = calendar.date(byAdding: .day, value: -sinceMonday, to: day)!
            return BudgetWindow(start: start, end: calendar.date(byAdding: .day, value: 7, to: start)!)
        case .monthly:
            let components = calendar.dateComponents([.year, .month], from: instant)
            let start = calendar.date(from: components)!
            return BudgetWindow(start: start, end: calendar.date(byAdding: .month, value: 1, to: start)!)
        }
    }

    static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()
}

/// A budget window `[start, end)`; `end` is nil for lifetime budgets.
public struct BudgetWindow: Sendable, Hashable {
    public let start: Date
    public let end: Date?

    public func contains(_ instant: Date) -> Bool {
        instant >= start && (end.map { instant < $0 } ?? true)
    }
}

/// A money budget for a key or a tenant. Holds and spend are counted per window, so a reservation
/// made in one window is settled against that same window even if it settles after the reset.
public struct Budget: Sendable, Hashable {
    public var limit: Money
    public var period: BudgetPeriod

    public init(limit: Money, period: BudgetPeriod) {
        self.limit = limit
        self.period = period
    }

    /// Whether a hold of `amount` fits next to what is already spent and reserved in the window:
    /// `spent + reserved + amount <= limit`, the same rule the database enforces in one statement.
    public func admits(_ amount: Money, spent: Money, reserved: Money) -> Bool {
        let (used, overflow1) = spent.nanos.addingReportingOverflow(reserved.nanos)
        let (total, overflow2) = used.addingReportingOverflow(amount.nanos)
        return !overflow1 && !overflow2 && amount.nanos >= 0 && total <= limit.nanos
    }
}
