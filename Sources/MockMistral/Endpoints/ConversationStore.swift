/// Conversations started through `/v1/conversations`, kept so that appends and restarts bill the
/// history the model re-reads (as the real API does). Bounded: the oldest are forgotten first.
final class ConversationStore: Sendable {
    struct Entry: Sendable {
        var id: String
        /// Bytes the usage rule counts for this entry.
        var bytes: Int
    }

    struct Conversation: Sendable {
        var model: String
        var agentID: String?
        var instructionsBytes: Int?
        var entries: [Entry]
    }

    static let capacity = 10_000

    private struct State {
        var conversations: [String: Conversation] = [:]
        var order: [String] = []
    }

    private let state = Locked(State())

    func conversation(_ id: String) -> Conversation? {
        state.withLockedValue { $0.conversations[id] }
    }

    func store(_ conversation: Conversation, id: String) {
        state.withLockedValue { state in
            if state.conversations.updateValue(conversation, forKey: id) == nil {
                state.order.append(id)
                // Evict in batches so inserts stay amortised O(1).
                if state.order.count > Self.capacity + Self.capacity / 4 {
                    let excess = state.order.count - Self.capacity
                    for evicted in state.order.prefix(excess) { state.conversations[evicted] = nil }
                    state.order.removeFirst(excess)
                }
            }
        }
    }

    func reset() {
        state.withLockedValue { $0 = State() }
    }
}
