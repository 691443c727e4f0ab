/// A key's unused admission tickets, oldest first, with the tokens they hold counted as they come
/// and go: a request takes the oldest ticket that fits (usually the first) and reads the pool's
/// totals for its rate-limit headers, both in constant time at any pool size (up to 256 tickets).
struct TicketStock<Ticket: HoldsTokens & Sendable>: Sendable {
    private var storage: [Ticket] = []
    /// Tickets before this index are taken; the rest are unused, oldest first.
    private var head = 0
    private(set) var tokens: Int64 = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { count == 0 }
    var all: ArraySlice<Ticket> { storage[head...] }

    mutating func append(contentsOf tickets: [Ticket]) {
        storage += tickets
        tokens += tickets.reduce(0) { $0 + $1.tokens }
    }

    /// Takes the oldest ticket that `fits`.
    mutating func takeFirst(where fits: (Ticket) -> Bool) -> Ticket? {
        guard let i = storage[head...].firstIndex(where: fits) else { return nil }
        let ticket = storage[i]
        if i == head {
            head += 1
            // Taken slots are reclaimed once they are half the storage: amortised O(1).
            if head > 32, head * 2 > storage.count {
                storage.removeFirst(head)
                head = 0
            }
        } else {
            storage.remove(at: i)
        }
        tokens -= ticket.tokens
        return ticket
    }

    /// Removes and returns every unused ticket matching `isRemoved`, oldest first.
    mutating func removeAll(where isRemoved: (Ticket) -> Bool) -> [Ticket] {
        // The sweeper asks every pool four times a second; most have nothing to remove.
        guard storage[head...].contains(where: isRemoved) else { return [] }
        let (removed, kept) = Array(storage[head...]).partitioned(isRemoved)
        guard !removed.isEmpty else { return [] }
        storage = kept
        head = 0
        tokens = kept.reduce(0) { $0 + $1.tokens }
        return removed
    }

    /// Removes and returns every unused ticket.
    mutating func removeAll() -> [Ticket] { removeAll(where: { _ in true }) }
}

/// What a ticket holds of its key's tokens/min.
protocol HoldsTokens {
    var tokens: Int64 { get }
}
