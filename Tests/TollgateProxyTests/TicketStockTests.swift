import Testing
@testable import TollgateProxy

@Suite("Ticket stock")
struct TicketStockTests {
    struct T: HoldsTokens, Equatable { let id: Int; let tokens: Int64 }

    static func stock(_ tokens: [Int64]) -> TicketStock<T> {
        var stock = TicketStock<T>()
        stock.append(contentsOf: tokens.enumerated().map { T(id: $0.offset, tokens: $0.element) })
        return stock
    }

    @Test func takesTheOldestTicketThatFitsAndKeepsCount() {
        var stock = Self.stock([10, 5, 10, 20])
        #expect(stock.count == 4 && stock.tokens == 45)
        #expect(stock.takeFirst(where: { $0.tokens >= 10 }) == T(id: 0, tokens: 10))
        #expect(stock.takeFirst(where: { $0.tokens >= 15 }) == T(id: 3, tokens: 20))  // from the middle
        #expect(stock.all.map(\.id) == [1, 2])
        #expect(stock.count == 2 && stock.tokens == 15)
        #expect(stock.takeFirst(where: { $0.tokens > 100 }) == nil)
        #expect(stock.count == 2 && stock.tokens == 15)
    }

    /// Hundreds of takes from the front (slots reclaimed on the way) interleaved with top-ups
    /// leave exactly the tickets not taken, in order, with their tokens.
    @Test func manyTakesAndTopUpsKeepOrderAndTotals() {
        var stock = TicketStock<T>()
        var expected: [T] = []
        var next = 0
        for round in 0..<50 {
            let added = (0..<(round % 7 + 3)).map { _ -> T in next += 1; return T(id: next, tokens: Int64(next % 5 + 1)) }
            stock.append(contentsOf: added)
            expected += added
            for _ in 0..<(round % 5 + 1) where !expected.isEmpty {
                #expect(stock.takeFirst(where: { _ in true }) == expected.removeFirst())
            }
            #expect(Array(stock.all) == expected)
            #expect(stock.tokens == expected.reduce(0) { $0 + $1.tokens })
        }
    }

    /// Taking most of a large stock from the front reclaims the taken slots on the way.
    @Test func reclaimingTakenSlotsKeepsTheRest() {
        var stock = Self.stock((0..<100).map { Int64($0 % 3 + 1) })
        for id in 0..<60 { #expect(stock.takeFirst(where: { _ in true })?.id == id) }
        #expect(stock.all.map(\.id) == Array(60..<100))
        #expect(stock.tokens == (60..<100).reduce(0) { $0 + Int64($1 % 3 + 1) })
        stock.append(contentsOf: [T(id: 100, tokens: 7)])
        #expect(stock.takeFirst(where: { $0.tokens == 7 })?.id == 100)
        #expect(stock.count == 40)
    }

    @Test func removesWhatMatchesAndEverything() {
        var stock = Self.stock([1, 2, 3, 4, 5])
        _ = stock.takeFirst(where: { _ in true })
        #expect(stock.removeAll(where: { $0.tokens % 2 == 0 }).map(\.id) == [1, 3])
        #expect(stock.all.map(\.id) == [2, 4] && stock.tokens == 8)
        #expect(stock.removeAll().map(\.id) == [2, 4])
        #expect(stock.isEmpty && stock.tokens == 0)
    }
}
