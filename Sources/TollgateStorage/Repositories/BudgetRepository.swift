import Foundation
import Logging
import PostgresNIO
import TollgateDomain

/// Spend and holds of one budget window.
public struct BudgetWindowUsage: Sendable, Hashable {
    public var window: BudgetWindow
    public var limit: Money
    public var spent: Money
    public var reserved: Money

    public var remaining: Money { Money(nanos: max(0, limit.nanos - spent.nanos - reserved.nanos)) }
}

public struct BudgetRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    /// The current window's spend for a tenant or key budget; a window nobody has spent in yet
    /// reads as zero. When the budget's limit changes, the current window's row takes the new limit
    /// so the data plane's conditional UPDATE enforces it at once.
    public func currentUsage(ownerID: UUID, budget: Budget, at now: Date, on db: PostgresConnection) async throws -> BudgetWindowUsage {
        let window = budget.period.window(containing: now)
        let rows = try await db.query("""
            SELECT spent_nanos, reserved_nanos FROM budget_windows
            WHERE owner_id = \(ownerID) AND window_start = \(window.start)
            """, logger: logger)
        var spent: Int64 = 0, reserved: Int64 = 0
        for try await (s, r) in rows.decode((Int64, Int64).self) { spent = s; reserved = r }
        return BudgetWindowUsage(window: window, limit: budget.limit, spent: Money(nanos: spent), reserved: Money(nanos: reserved))
    }

    /// Creates or updates the current window's row with the budget's limit.
    public func applyLimit(tenantID: UUID, ownerID: UUID, ownerKind: String, budget: Budget, at now: Date,
                           on db: PostgresConnection) async throws {
        let window = budget.period.window(containing: now)
        try await db.query("""
            INSERT INTO budget_windows (owner_id, window_start, tenant_id, owner_kind, window_end, limit_nanos)
            VALUES (\(ownerID), \(window.start), \(tenantID), \(ownerKind), \(window.end), \(budget.limit.nanos))
            ON CONFLICT (owner_id, window_start) DO UPDATE SET limit_nanos = excluded.limit_nanos
            """, logger: logger)
    }
}
