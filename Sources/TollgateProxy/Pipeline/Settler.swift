import Foundation
import Logging
import Metrics
import ServiceLifecycle
import TollgateStorage

/// Stage 6: settles every admitted request exactly once, without making the client wait.
/// Each settlement is first appended to an fsync'd local journal, then posted to Postgres; while
/// Postgres is unreachable it is retried, and after a crash the journal is replayed at start.
/// Replays are harmless: `tollgate_settle` does nothing for a request already settled.
final class SettlementQueue: Service, Sendable {
    private let database: Database
    private let store: SettlementStore
    private let journal: SettlementJournal
    private let logger: Logger
    private let stream: AsyncStream<Settlement>
    private let continuation: AsyncStream<Settlement>.Continuation
    private let pending = Locked(0)
    private let backlog = Gauge(label: "tollgate_settlement_backlog")
    private let overshoot = Counter(label: "tollgate_overshoot_nanos_total")

    init(database: Database, journal: SettlementJournal, logger: Logger) {
        self.database = database
        self.store = SettlementStore(logger: logger)
        self.journal = journal
        self.logger = logger
        (stream, continuation) = AsyncStream.makeStream(of: Settlement.self)
    }

    /// Records the settlement durably (journal) and queues it for Postgres.
    func submit(_ settlement: Settlement) async {
        do {
            try await journal.append(settlement)
        } catch {
            logger.error("settlement journal write failed; settling directly", metadata: ["error": "\(error)"])
        }
        pending.withLock { $0 += 1 }
        backlog.record(pending.withLock { $0 })
        continuation.yield(settlement)
    }

    /// Settlements still waiting for Postgres (for tests and graceful shutdown).
    var backlogCount: Int { pending.withLock { $0 } }

    /// How long a shutting-down replica keeps trying to post what is queued. Whatever is left stays
    /// in the journal and is posted by the next start.
    static let shutdownFlushLimit: Duration = .seconds(10)
    private let shutdownDeadline = Locked<ContinuousClock.Instant?>(nil)

    func run() async throws {
        for settlement in try journal.unacknowledged() {
            pending.withLock { $0 += 1 }
            continuation.yield(settlement)
        }
        await withGracefulShutdownHandler {
            for await settlement in stream {
                guard await post(settlement) else { break }
                let left = pending.withLock { $0 -= 1; return $0 }
                backlog.record(left)
                if left == 0 { try? await journal.compactIfIdle() }
            }
        } onGracefulShutdown: {
            // Take no new work; flush what is queued, for a bounded time.
            self.shutdownDeadline.withLock { $0 = .now + Self.shutdownFlushLimit }
            self.continuation.finish()
        }
    }

    /// Posts one settlement, retrying with backoff until Postgres accepts it. Returns false when
    /// shutting down and out of time (the settlement stays in the journal).
    private func post(_ settlement: Settlement) async -> Bool {
        var delay: Duration = .milliseconds(100)
        while true {
            if let deadline = shutdownDeadline.withLock({ $0 }), ContinuousClock.now > deadline {
                logger.warning("shutting down with settlements left in the journal", metadata: ["pending": "\(backlogCount)"])
                return false
            }
            do {
                let result = try await withDeadline(.seconds(5)) { [database, store] in
                    try await database.read { try await store.settle(settlement, on: $0) }
                }
                if result.overshoot.nanos > 0 {
                    overshoot.increment(by: Int64(result.overshoot.nanos))
                    logger.warning("actual cost exceeded the hold", metadata: [
                        "request_id": "\(settlement.requestID)", "overshoot_nanos": "\(result.overshoot.nanos)"])
                }
                try? await journal.acknowledge(settlement.requestID)
                return true
            } catch {
                logger.warning("settlement deferred: database unreachable", metadata: [
                    "request_id": "\(settlement.requestID)", "retry_in": "\(delay)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}

/// Append-only journal of settlements: `S <json>` when submitted, `A <request id>` when posted.
/// Every write is fsync'd before it returns. Writes run on one serial queue, off the async pool.
final class SettlementJournal: Sendable {
    private let url: URL
    private let queue = DispatchQueue(label: "tollgate.settlement-journal")
    private let handle: Locked<FileHandle?>
    private let open = Locked(Set<UUID>())

    init(directory: String, name: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        url = URL(fileURLWithPath: directory).appendingPathComponent("settlements-\(name).journal")
        if !FileManager.default.fileExists(atPath: url.path) {
            FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        self.handle = Locked(handle)
    }

    func append(_ settlement: Settlement) async throws {
        let data = try JSONEncoder().encode(settlement)
        open.withLock { _ = $0.insert(settlement.requestID) }
        try await write(Data("S ".utf8) + data + Data("\n".utf8))
    }

    func acknowledge(_ requestID: UUID) async throws {
        open.withLock { _ = $0.remove(requestID) }
        try await write(Data("A \(requestID.uuidString)\n".utf8))
    }

    /// Settlements written but never acknowledged (left by a crash or an outage).
    func unacknowledged() throws -> [Settlement] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        var submitted: [UUID: Settlement] = [:]
        var order: [UUID] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("S "), let s = try? JSONDecoder().decode(Settlement.self, from: Data(line.dropFirst(2).utf8)) {
                if submitted[s.requestID] == nil { order.append(s.requestID) }
                submitted[s.requestID] = s
            } else if line.hasPrefix("A "), let id = UUID(uuidString: String(line.dropFirst(2))) {
                submitted[id] = nil
            }
        }
        let result = order.compactMap { submitted[$0] }
        open.withLock { $0.formUnion(result.map(\.requestID)) }
        return result
    }

    /// Truncates the journal when nothing in it is outstanding.
    func compactIfIdle() async throws {
        guard open.withLock({ $0.isEmpty }) else { return }
        try await onQueue { handle in
            try handle.truncate(atOffset: 0)
            try handle.synchronize()
        }
    }

    private func write(_ data: Data) async throws {
        try await onQueue { handle in
            try handle.write(contentsOf: data)
            try handle.synchronize()
        }
    }

    private func onQueue(_ body: @escaping @Sendable (FileHandle) throws -> Void) async throws {
        let handle = self.handle
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            queue.async {
                do {
                    try handle.withLock { handle in
                        guard let handle else { return }
                        try body(handle)
                    }
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }
}
