import Foundation
import Logging
import PostgresNIO
import Testing
import TollgateDomain
import TollgateTestSupport
@testable import TollgateStorage

@Suite struct RepositoryTests {
    static let logger: Logger = {
        var logger = Logger(label: "RepositoryTests")
        logger.logLevel = .warning
        return logger
    }()

    /// A database with all migrations applied, cloned per test.
    static func migratedTemplate() async throws -> String {
        try await TestPostgres.shared.templateDatabase(named: "tgrepo_migrated") { client in
            let migrations = try Migration.load(from: StorageTestPaths.migrations)
            try await MigrationRunner(client: client, migrations: migrations, logger: RepositoryTests.logger).migrate()
        }
    }

    static func withMigratedDatabase(_ body: (Database) async throws -> Void) async throws {
        let template = try await migratedTemplate()
        try await withTestDatabase(template: template) { client, _ in
            try await body(Database(client: client, logger: logger))
        }
    }

    static let tenants = TenantRepository(logger: logger)
    static let prices = PriceRepository(logger: logger)
    static let usage = UsageRepository(logger: logger)

    static func tenant(_ slug: String, currency: Currency = .usd, budget: Budget? = nil,
                       limits: RateLimits = RateLimits()) -> TenantRecord {
        TenantRecord(id: UUID(), slug: slug, name: "Tenant \(slug)", status: .active, currency: currency,
                     wrappedDataKey: Data([1, 2, 3, 4]), masterKeyVersion: 1, budget: budget, limits: limits)
    }

    // MARK: Tenants

    @Test func tenantInsertAndGet() async throws {
        try await Self.withMigratedDatabase { db in
            let budget = Budget(limit: Money(nanos: 25_000_000_000), period: .monthly)
            let limits = RateLimits(requestsPerMinute: 60, tokensPerMinute: 100_000, maxConcurrent: 4)
            let record = Self.tenant("acme", currency: .eur, budget: budget, limits: limits)
            let inserted = try await db.transaction { try await Self.tenants.insert(record, on: $0) }
            let fetched = try #require(try await db.read { try await Self.tenants.get(record.id, on: $0) })
            for tenant in [inserted, fetched] {
                #expect(tenant.id == record.id)
                #expect(tenant.slug == "acme")
                #expect(tenant.name == "Tenant acme")
                #expect(tenant.status == .active)
                #expect(tenant.currency == .eur)
                #expect(tenant.wrappedDataKey == Data([1, 2, 3, 4]))
                #expect(tenant.masterKeyVersion == 1)
                #expect(tenant.budget == budget)
                #expect(tenant.limits == limits)
            }
            #expect(fetched.createdAt == inserted.createdAt)
            #expect(try await db.read { try await Self.tenants.get(UUID(), on: $0) } == nil)

            await #expect(throws: StorageError.conflict("tenants_slug_key")) {
                _ = try await db.transaction { try await Self.tenants.insert(Self.tenant("acme"), on: $0) }
            }
        }
    }

    /// 7 tenants, pages of 3: 3, 3, 1, in `(created_at, id)` order, no duplicates or gaps.
    /// With `sameTransaction` all rows share one `created_at`, so the order rests on the id tie-break.
    @Test(arguments: [false, true])
    func tenantListPagination(sameTransaction: Bool) async throws {
        try await Self.withMigratedDatabase { db in
            let records = (1...7).map { Self.tenant("tenant-\($0)") }
            if sameTransaction {
                try await db.transaction { conn in
                    for record in records { _ = try await Self.tenants.insert(record, on: conn) }
                }
            } else {
                for record in records { _ = try await db.transaction { try await Self.tenants.insert(record, on: $0) } }
            }
            let expectedOrder = try await db.read { conn in
                var ids: [UUID] = []
                for try await id in try await conn.query("SELECT id FROM tenants ORDER BY created_at, id", logger: Self.logger)
                    .decode(UUID.self) { ids.append(id) }
                return ids
            }
            #expect(Set(expectedOrder) == Set(records.map(\.id)))

            for _ in 0..<2 {  // twice: the order is stable
                let pages = try await Self.allTenantPages(db, limit: 3)
                #expect(pages.map(\.count) == [3, 3, 1])
                #expect(pages.flatMap { $0 } == expectedOrder)
            }
            #expect(try await Self.allTenantPages(db, limit: 7).map(\.count) == [7])
            #expect(try await Self.allTenantPages(db, limit: 100).map(\.count) == [7])
            let exact = try await db.read { try await Self.tenants.list(limit: 7, after: nil, status: nil, only: nil, on: $0) }
            #expect(exact.next == nil)
            let first = try await db.read { try await Self.tenants.list(limit: 6, after: nil, status: nil, only: nil, on: $0) }
            #expect(first.next != nil)
        }
    }

    @Test func tenantPagesStayStableWhileRowsAreInserted() async throws {
        try await Self.withMigratedDatabase { db in
            let records = (1...7).map { Self.tenant("stable-\($0)") }
            for record in records { _ = try await db.transaction { try await Self.tenants.insert(record, on: $0) } }
            var seen: [UUID] = []
            var cursor: PageCursor? = nil
            var sizes: [Int] = []
            repeat {
                let page = try await db.read { [cursor] conn in
                    try await Self.tenants.list(limit: 3, after: cursor, status: nil, only: nil, on: conn)
                }
                seen += page.items.map(\.id)
                sizes.append(page.items.count)
                if sizes.count == 1 {
                    _ = try await db.transaction { try await Self.tenants.insert(Self.tenant("late-arrival"), on: $0) }
                }
                cursor = try page.next.map { try #require(PageCursor(encoded: $0.encoded)) }
            } while cursor != nil
            #expect(sizes == [3, 3, 2])
            #expect(Set(seen).count == 8)
            #expect(seen.prefix(7) == records.map(\.id)[...])
        }
    }

    @Test func tenantListFilters() async throws {
        try await Self.withMigratedDatabase { db in
            let a = Self.tenant("filter-a"), b = Self.tenant("filter-b"), c = Self.tenant("filter-c")
            for record in [a, b, c] { _ = try await db.transaction { try await Self.tenants.insert(record, on: $0) } }
            let updated = try await db.transaction { try await Self.tenants.update(b.id, name: nil, status: .suspended, on: $0) }
            #expect(updated?.status == .suspended)
            #expect(updated?.name == b.name)
            let suspended = try await db.read { try await Self.tenants.list(limit: 10, after: nil, status: .suspended, only: nil, on: $0) }
            #expect(suspended.items.map(\.id) == [b.id])
            let active = try await db.read { try await Self.tenants.list(limit: 10, after: nil, status: .active, only: nil, on: $0) }
            #expect(Set(active.items.map(\.id)) == [a.id, c.id])
            let only = try await db.read { try await Self.tenants.list(limit: 10, after: nil, status: nil, only: c.id, on: $0) }
            #expect(only.items.map(\.id) == [c.id])
            let none = try await db.read { try await Self.tenants.list(limit: 10, after: nil, status: .suspended, only: c.id, on: $0) }
            #expect(none.items.isEmpty && none.next == nil)
        }
    }

    static func allTenantPages(_ db: Database, limit: Int) async throws -> [[UUID]] {
        var pages: [[UUID]] = []
        var cursor: PageCursor? = nil
        repeat {
            let page = try await db.read { [cursor] conn in
                try await tenants.list(limit: limit, after: cursor, status: nil, only: nil, on: conn)
            }
            pages.append(page.items.map(\.id))
            // Through the opaque string, as the API hands it out.
            cursor = try page.next.map { try #require(PageCursor(encoded: $0.encoded)) }
            if pages.count > 20 { Issue.record("pagination does not end"); break }
        } while cursor != nil
        return pages
    }

    // MARK: Prices

    @Test func seededPlatformPrices() async throws {
        try await Self.withMigratedDatabase { db in
            let usd = try await db.read { try await Self.prices.listPlatform(currency: .usd, on: $0) }
            let eur = try await db.read { try await Self.prices.listPlatform(currency: .eur, on: $0) }
            let all = try await db.read { try await Self.prices.listPlatform(currency: nil, on: $0) }
            #expect(usd.count == 50)
            #expect(eur.count == 50)
            #expect(all.count == 100)
            #expect(usd.allSatisfy { $0.currency == .usd && $0.tenantID == nil })

            let small = try #require(usd.first { $0.model == "mistral-small-latest" })
            #expect(small.price.inputPerMillion == Money(nanos: 150_000_000))
            #expect(small.price.outputPerMillion == Money(nanos: 600_000_000))
            #expect(small.price.cachedInputPerMillion == Money(nanos: 15_000_000))
            #expect(small.price.perPage == nil)

            let ocr = try #require(usd.first { $0.model == "mistral-ocr-latest" })
            #expect(ocr.price.perPage == Money(nanos: 4_000_000))
            #expect(ocr.price.inputPerMillion == .zero)

            // Every seeded price's cached rate is 10 % of its input rate.
            for record in all {
                #expect(record.price.cachedInputPerMillion.nanos == record.price.inputPerMillion.nanos / 10, "\(record.model)")
            }
            #expect(usd.map(\.model) == usd.map(\.model).sorted())
        }
    }

    @Test func tenantOverrideWins() async throws {
        try await Self.withMigratedDatabase { db in
            let tenant = Self.tenant("priced"), other = Self.tenant("unpriced")
            for record in [tenant, other] { _ = try await db.transaction { try await Self.tenants.insert(record, on: $0) } }
            let override = Price(inputPerMillion: Money(nanos: 100_000_000), outputPerMillion: Money(nanos: 400_000_000))
            let saved = try await db.transaction {
                try await Self.prices.upsert(tenantID: tenant.id, model: "mistral-small-latest", currency: .usd, price: override, on: $0)
            }
            #expect(saved.tenantID == tenant.id)
            #expect(saved.price == override)

            func effective(_ id: UUID, _ currency: Currency) async throws -> [String: PriceRecord] {
                let list = try await db.read { try await Self.prices.listEffective(tenantID: id, currency: currency, on: $0) }
                #expect(Set(list.map(\.model)).count == list.count, "one price per model")
                return Dictionary(uniqueKeysWithValues: list.map { ($0.model, $0) })
            }

            let mine = try await effective(tenant.id, .usd)
            #expect(mine.count == 50)
            #expect(mine["mistral-small-latest"]?.tenantID == tenant.id)
            #expect(mine["mistral-small-latest"]?.price.inputPerMillion == Money(nanos: 100_000_000))
            #expect(mine["mistral-small-latest"]?.price.cachedInputPerMillion == Money(nanos: 10_000_000))
            #expect(mine["mistral-large-latest"]?.tenantID == nil)
            #expect(mine["mistral-large-latest"]?.price.inputPerMillion == Money(nanos: 500_000_000))

            let theirs = try await effective(other.id, .usd)
            #expect(theirs["mistral-small-latest"]?.tenantID == nil)
            #expect(theirs["mistral-small-latest"]?.price.inputPerMillion == Money(nanos: 150_000_000))

            // The USD override does not leak into EUR.
            #expect(try await effective(tenant.id, .eur)["mistral-small-latest"]?.tenantID == nil)

            // Upserting again updates in place; an override-only model appears for that tenant alone.
            let cheaper = Price(inputPerMillion: Money(nanos: 1), outputPerMillion: Money(nanos: 2))
            _ = try await db.transaction {
                try await Self.prices.upsert(tenantID: tenant.id, model: "mistral-small-latest", currency: .usd, price: cheaper, on: $0)
            }
            _ = try await db.transaction {
                try await Self.prices.upsert(tenantID: tenant.id, model: "ft:custom:model", currency: .usd, price: cheaper, on: $0)
            }
            let after = try await effective(tenant.id, .usd)
            #expect(after.count == 51)
            #expect(after["mistral-small-latest"]?.price.outputPerMillion == Money(nanos: 2))
            #expect(try await effective(other.id, .usd).count == 50)

            // Deleting the override restores the platform price.
            #expect(try await db.transaction {
                try await Self.prices.delete(tenantID: tenant.id, model: "mistral-small-latest", currency: .usd, on: $0)
            })
            #expect(try await !db.transaction {
                try await Self.prices.delete(tenantID: tenant.id, model: "mistral-small-latest", currency: .usd, on: $0)
            })
            #expect(try await effective(tenant.id, .usd)["mistral-small-latest"]?.tenantID == nil)
            // The platform row is untouched.
            #expect(try await db.read { try await Self.prices.listPlatform(currency: .usd, on: $0) }.count == 50)
        }
    }

    // MARK: Usage ledger

    static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    static func day(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: date)
    }

    static func partitionName(_ date: Date) -> String {
        let c = utcCalendar.dateComponents([.year, .month], from: date)
        let month = c.month! < 10 ? "0\(c.month!)" : "\(c.month!)"
        return "usage_ledger_\(c.year!)_\(month)"
    }

    /// Start of next month (UTC): the partitions of this and next month exist from the migration.
    static func nextMonthBoundary() -> Date {
        let start = utcCalendar.date(from: utcCalendar.dateComponents([.year, .month], from: Date()))!
        return utcCalendar.date(byAdding: .month, value: 1, to: start)!
    }

    static func row(tenant: UUID, key: UUID, at: Date, model: String?, prompt: Int = 0, completion: Int = 0,
                    cached: Int = 0, cost: Int64, estimated: Bool = false, id: UUID = UUID()) -> LedgerRow {
        LedgerRow(requestID: id, startedAt: at, tenantID: tenant, keyID: key, credentialID: nil,
                  endpoint: model == nil ? "files" : "chat", model: model,
                  usage: Usage(promptTokens: prompt, completionTokens: completion, cachedTokens: cached),
                  cost: Money(nanos: cost), currency: .usd, statusCode: 200, estimated: estimated)
    }

    @Test func ledgerRecordIsIdempotentPerRequest() async throws {
        try await Self.withMigratedDatabase { db in
            let row = Self.row(tenant: UUID(), key: UUID(), at: Date(timeIntervalSince1970: 1_800_000_000), model: "m", cost: 10)
            #expect(try await db.transaction { try await Self.usage.record(row, on: $0) })
            #expect(try await !db.transaction { try await Self.usage.record(row, on: $0) })
            var changed = row
            changed.cost = Money(nanos: 999)
            changed.statusCode = 500
            #expect(try await !db.transaction { try await Self.usage.record(changed, on: $0) })
            let stored = try await db.read { conn in
                try await conn.query("SELECT count(*), sum(cost_nanos)::bigint FROM usage_ledger WHERE request_id = \(row.requestID)",
                                     logger: Self.logger).decode((Int, Int64).self).first { _ in true }
            }
            #expect(stored?.0 == 1)
            #expect(stored?.1 == 10)
        }
    }

    @Test(.disabled("bug: ledger uniqueness is (request_id, started_at) because of partitioning; a retry with another started_at is recorded twice"))
    func ledgerRecordIsIdempotentEvenWithAnotherStartTime() async throws {
        try await Self.withMigratedDatabase { db in
            let row = Self.row(tenant: UUID(), key: UUID(), at: Date(timeIntervalSince1970: 1_800_000_000), model: "m", cost: 10)
            let first = try await db.transaction { try await Self.usage.record(row, on: $0) }
            #expect(first)
            var retried = row
            retried.startedAt = row.startedAt.addingTimeInterval(1)
            #expect(try await !db.transaction { try await Self.usage.record(retried, on: $0) })
        }
    }

    @Test func aggregateAcrossAMonthBoundary() async throws {
        try await Self.withMigratedDatabase { db in
            let boundary = Self.nextMonthBoundary()
            let from = boundary.addingTimeInterval(-86_400), to = boundary.addingTimeInterval(86_400)
            let tenant = UUID(), otherTenant = UUID(), keyA = UUID(), keyB = UUID()
            let r1 = Self.row(tenant: tenant, key: keyA, at: boundary.addingTimeInterval(-1), model: "mistral-small-latest",
                              prompt: 10, completion: 5, cached: 2, cost: 100)
            let r2 = Self.row(tenant: tenant, key: keyA, at: boundary.addingTimeInterval(1), model: "mistral-small-latest",
                              prompt: 20, completion: 7, cost: 200, estimated: true)
            let r3 = Self.row(tenant: tenant, key: keyB, at: boundary.addingTimeInterval(7_200), model: "codestral-latest",
                              prompt: 1, completion: 1, cost: 50)
            let r4 = Self.row(tenant: tenant, key: keyB, at: boundary.addingTimeInterval(-7_200), model: nil, cost: 0)
            let r5 = Self.row(tenant: tenant, key: keyA, at: from, model: "mistral-small-latest", prompt: 1, cost: 1)
            let r6 = Self.row(tenant: tenant, key: keyA, at: to, model: "mistral-small-latest", prompt: 1000, cost: 1000)
            let r7 = Self.row(tenant: otherTenant, key: keyA, at: boundary.addingTimeInterval(1), model: "mistral-small-latest",
                              prompt: 1000, cost: 1000)
            let r8 = Self.row(tenant: tenant, key: keyA, at: Date(timeIntervalSince1970: 1_579_046_400), model: "old", cost: 7)  // 2020-01-15
            for row in [r1, r2, r3, r4, r5, r6, r7, r8] {
                #expect(try await db.transaction { try await Self.usage.record(row, on: $0) })
            }

            // Rows on either side of the boundary live in different monthly partitions.
            let partitions = try await db.read { conn in
                var result: [UUID: String] = [:]
                for try await (id, table) in try await conn.query(
                    "SELECT request_id, tableoid::regclass::text FROM usage_ledger", logger: Self.logger).decode((UUID, String).self) {
                    result[id] = table
                }
                return result
            }
            #expect(partitions[r1.requestID] == Self.partitionName(r1.startedAt))
            #expect(partitions[r2.requestID] == Self.partitionName(r2.startedAt))
            #expect(partitions[r1.requestID] != partitions[r2.requestID])
            #expect(partitions[r8.requestID] == "usage_ledger_default")

            func aggregate(_ grouping: UsageGrouping, key: UUID? = nil, range: (Date, Date)? = nil) async throws -> [UsageAggregate] {
                let (lower, upper) = range ?? (from, to)
                return try await db.read {
                    try await Self.usage.aggregate(tenantID: tenant, from: lower, to: upper, groupBy: grouping, keyID: key, on: $0)
                }
            }

            let byModel = try await aggregate(.model)
            #expect(byModel == [
                UsageAggregate(group: "", requests: 1, promptTokens: 0, completionTokens: 0, cachedTokens: 0,
                               cost: .zero, estimatedRequests: 0),
                UsageAggregate(group: "codestral-latest", requests: 1, promptTokens: 1, completionTokens: 1, cachedTokens: 0,
                               cost: Money(nanos: 50), estimatedRequests: 0),
                UsageAggregate(group: "mistral-small-latest", requests: 3, promptTokens: 31, completionTokens: 12, cachedTokens: 2,
                               cost: Money(nanos: 301), estimatedRequests: 1),
            ])

            let byDay = try await aggregate(.day)
            #expect(byDay == [
                UsageAggregate(group: Self.day(r1.startedAt), requests: 3, promptTokens: 11, completionTokens: 5, cachedTokens: 2,
                               cost: Money(nanos: 101), estimatedRequests: 0),
                UsageAggregate(group: Self.day(r2.startedAt), requests: 2, promptTokens: 21, completionTokens: 8, cachedTokens: 0,
                               cost: Money(nanos: 250), estimatedRequests: 1),
            ])
            #expect(Self.day(r1.startedAt) != Self.day(r2.startedAt))

            let byKey = Dictionary(uniqueKeysWithValues: try await aggregate(.key).map { ($0.group, $0) })
            #expect(byKey.count == 2)
            #expect(byKey[keyA.uuidString.lowercased()]?.requests == 3)
            #expect(byKey[keyA.uuidString.lowercased()]?.cost == Money(nanos: 301))
            #expect(byKey[keyB.uuidString.lowercased()]?.requests == 2)
            #expect(byKey[keyB.uuidString.lowercased()]?.cost == Money(nanos: 50))

            let onlyB = try await aggregate(.model, key: keyB)
            #expect(onlyB.map(\.group) == ["", "codestral-latest"])
            #expect(onlyB.map(\.requests) == [1, 1])

            // A wide range reaches the default partition too; an empty range yields nothing.
            let wide = try await aggregate(.key, range: (Date(timeIntervalSince1970: 1_500_000_000), to.addingTimeInterval(1)))
            #expect(wide.reduce(0) { $0 + $1.requests } == 7)
            #expect(wide.reduce(Int64(0)) { $0 + $1.cost.nanos } == 1_358)  // 100 + 200 + 50 + 0 + 1 + 1000 + 7
            #expect(try await aggregate(.model, range: (to, to)).isEmpty)
        }
    }
}
