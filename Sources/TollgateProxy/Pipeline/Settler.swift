import Foundation
import Logging
import Metrics
import PostgresNIO
import ServiceLifecycle
import TollgateStorage

/// Stage 6: settles every admitted request exactly once, without making the client wait.
/// Two loops run behind `submit`: the journal loop appends whatever was submitted since its last
/// write to an fsync'd local journal (group commit: one fsync for many settlements), then hands it
/// to the post loop, which posts batches to Postgres, one round trip and one commit each. While
/// Postgres is unreachable the post loop retries, and after a crash the journal is replayed at start.
/// Replays are harmless: `tollgate_settle` does nothing for a request already settled.
final class SettlementQueue: Service, Sendable {
    /// Most settlements posted in one round trip.
    static let maxBatch = 256
    /// How long a shutting-down replica keeps trying to post what is queued. Whatever is left stays
    /// in the journal and is posted by the next start.
    static let shutdownFlushLimit: Duration = .seconds(10)

    private let database: Database
    private let store: SettlementStore
    private let journal: SettlementJournal
    private let logger: Logger
    /// Submitted, not yet in the journal.
    private let unjournaled = Locked([Settlement]())
    /// In the journal, not yet posted.
    private let queued = Locked([Settlement]())
    private let journalWakeUp: AsyncStream<Void>
    private let journalWake: AsyncStream<Void>.Continuation
    private let postWakeUp: AsyncStream<Void>
    private let postWake: AsyncStream<Void>.Continuation
    private let shutdownDeadline = Locked<ContinuousClock.Instant?>(nil)
    private let journalLinger = WakeableSleep()
    private let postLinger = WakeableSleep()
    /// Settlements submitted and posted since start (posting is in submission order), and the
    /// requests waiting for posting to reach their target (while any wait, nothing lingers).
    private struct Progress {
        var submitted = 0
        var posted = 0
        var waiters: [Int: PostWaiter] = [:]
        var nextWaiter = 0
    }
    private struct PostWaiter {
        let target: Int
        let continuation: CheckedContinuation<Void, Never>
        var timer: Scheduled<Void>?
    }
    private let progress = Locked(Progress())
    private let backlog = Gauge(label: "tollgate_settlement_backlog")
    private let overshoot = Counter(label: "tollgate_overshoot_nanos_total")
    private let refused = Counter(label: "tollgate_settlements_refused_total")

    /// A server-side refusal that retrying cannot fix: anything but connection problems (08),
    /// transaction rollbacks such as deadlocks (40), insufficient resources (53) and operator
    /// intervention such as a shutdown (57), which are retried.
    static func isRefusal(_ error: any Error) -> Bool {
        if error is StorageError { return true }  // constraint violations, as the storage layer names them
        guard let error = error as? PSQLError, let state = error.sqlState else { return false }
        return !["08", "40", "53", "57"].contains(String(state.prefix(2)))
    }

    init(database: Database, journal: SettlementJournal, logger: Logger) {
        self.database = database
        self.store = SettlementStore(logger: logger)
        self.journal = journal
        self.logger = logger
        (journalWakeUp, journalWake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (postWakeUp, postWake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues the settlement and returns at once: the client never waits for the journal or
    /// Postgres. If the process dies before the journal write, the hold is still in Postgres and the
    /// reaper settles it at the reserved amount: the cost is over-estimated, never lost.
    func submit(_ settlement: Settlement) {
        progress.withLock { $0.submitted += 1 }
        unjournaled.withLock { $0.append(settlement) }
        backlog.record(backlogCount)
        journalWake.yield()
    }

    /// Whether settlements submitted here are still waiting for Postgres.
    var hasUnposted: Bool { progress.withLock { $0.posted < $0.submitted } }

    /// Waits (at most `limit`) until everything submitted so far has been posted. Admission calls
    /// this before refusing a request on a limit that a pending settlement would relax (a slot,
    /// unused tokens, an unreleased hold): a client that waits for each response before sending the
    /// next must not be refused because the previous request's settlement is still on its way.
    func waitUntilPosted(limit: Duration) async {
        let (id, target) = progress.withLock { p -> (Int, Int) in
            p.nextWaiter += 1
            return (p.nextWaiter, p.submitted)
        }
        // Woken by the post that reaches the target, by the time limit or by cancellation, whichever
        // comes first (no polling).
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let waiting = progress.withLock { p -> Bool in
                    guard p.posted < target, !Task.isCancelled else { return false }
                    p.waiters[id] = PostWaiter(target: target, continuation: continuation)
                    return true
                }
                guard waiting else {
                    continuation.resume()
                    return
                }
                stopLingering()
                let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(limit.nanoseconds)) {
                    self.endWait(id)
                }
                let stillWaiting = progress.withLock { p -> Bool in
                    guard p.waiters[id] != nil else { return false }
                    p.waiters[id]?.timer = timer
                    return true
                }
                if !stillWaiting { timer.cancel() }
            }
        } onCancel: {
            endWait(id)
        }
    }

    /// Resumes waiter `id` if it still waits (its limit passed, or it was cancelled).
    private func endWait(_ id: Int) {
        let waiter = progress.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.timer?.cancel()
        waiter?.continuation.resume()
    }

    /// Counts `count` more settlements as posted and resumes the waiters that were waiting for them.
    private func markPosted(_ count: Int) {
        let done = progress.withLock { p -> [PostWaiter] in
            p.posted += count
            guard !p.waiters.isEmpty else { return [] }
            let reached = p.waiters.filter { $0.value.target <= p.posted }
            for id in reached.keys { p.waiters[id] = nil }
            return Array(reached.values)
        }
        for waiter in done {
            waiter.timer?.cancel()
            waiter.continuation.resume()
        }
    }

    /// Settlements still waiting for Postgres (for tests and graceful shutdown).
    var backlogCount: Int { unjournaled.withLock { $0.count } + queued.withLock { $0.count } }

    func run() async throws {
        let replay = try journal.unacknowledged()
        progress.withLock { $0.submitted += replay.count }
        if !replay.isEmpty {
            queued.withLock { $0.insert(contentsOf: replay, at: 0) }
            postWake.yield()
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in self.journalWakeUp {
                        await self.linger(self.journalLinger, for: Self.journalPause)
                        await self.journalSubmitted()
                    }
                    // Shutting down: journal the stragglers, then let the post loop finish.
                    await self.journalSubmitted()
                    self.postWake.finish()
                }
                group.addTask {
                    for await _ in self.postWakeUp {
                        await self.linger(self.postLinger, for: Self.postPause)
                        guard await self.drain() else { return }
                    }
                    // Shutting down: post what is left, within the flush limit.
                    _ = await self.drain()
                }
            }
        } onGracefulShutdown: {
            self.shutdownDeadline.withLock { $0 = .now + Self.shutdownFlushLimit }
            self.stopLingering()
            self.journalWake.finish()
        }
    }

    /// Waits a moment before a journal write or a post so that, at low load too, one fsync and one
    /// commit cover several settlements instead of one each (measured: at one connection, every
    /// request paid for a second commit and a journal fsync). Nobody waits for it: the client already
    /// has its response, and the hold stays reserved until the post lands.
    private func linger(_ sleep: WakeableSleep, for duration: Duration) async {
        guard shutdownDeadline.withLock({ $0 == nil }), progress.withLock({ $0.waiters.isEmpty }) else { return }
        await sleep.sleep(for: duration)
    }

    /// Ends both loops' lingering (a request waits for posting, or shutdown began).
    private func stopLingering() {
        journalLinger.wake()
        postLinger.wake()
    }

    /// Posting: measured at one connection (2 cores shared with Postgres), lingering 5 ms cost
    /// Postgres 253 µs of CPU per request, 20 ms 121 µs, 100 ms 49 µs, and the gateway's added p50
    /// fell with it (0.44 -> 0.30 ms). Longer only delays when spend shows; a refusal that waits
    /// for posting ends it.
    static let postPause: Duration = .milliseconds(100)
    /// Journaling stays short: a settlement not yet in the journal when the process dies is charged
    /// by the reaper at its whole hold.
    static let journalPause: Duration = .milliseconds(5)

    /// Writes everything submitted so far in one append and one fsync, then queues it for posting.
    private func journalSubmitted() async {
        let batch = unjournaled.withLock { pending -> [Settlement] in
            defer { pending.removeAll(keepingCapacity: true) }
            return pending
        }
        guard !batch.isEmpty else { return }
        do {
            try await journal.append(batch)
        } catch {
            logger.error("settlement journal write failed; posting without it", metadata: ["error": "\(error)"])
        }
        queued.withLock { $0.append(contentsOf: batch) }
        postWake.yield()
    }

    /// Posts everything queued, in batches: whatever queued up while the previous batch was in
    /// flight goes in one round trip and one commit, so settlement keeps up with admission.
    /// Returns false when out of time while shutting down (what is left is already journaled).
    private func drain() async -> Bool {
        while true {
            let batch = queued.withLock { queue -> [Settlement] in
                let taken = Array(queue.prefix(Self.maxBatch))
                queue.removeFirst(taken.count)
                return taken
            }
            guard !batch.isEmpty else {
                try? await journal.compactIfIdle()
                return true
            }
            guard await post(batch) else {
                queued.withLock { $0.insert(contentsOf: batch, at: 0) }
                return false
            }
            backlog.record(backlogCount)
        }
    }

    /// Posts one batch, retrying with backoff until Postgres accepts it. Returns false when
    /// shutting down and out of time (the settlements stay in the journal).
    private func post(_ batch: [Settlement]) async -> Bool {
        var delay: Duration = .milliseconds(100)
        while true {
            if let deadline = shutdownDeadline.withLock({ $0 }), ContinuousClock.now > deadline {
                logger.warning("shutting down with settlements left in the journal", metadata: ["pending": "\(backlogCount + batch.count)"])
                return false
            }
            do {
                let results = try await withDeadline(.seconds(5)) { [database, store] in
                    // Answers after its commit: counted as posted (which frees waiting
                    // admissions) only once visible.
                    try await database.read { db in try await store.settle(batch: batch, on: db) }
                }
                for (settlement, result) in zip(batch, results) where result.overshoot.nanos > 0 {
                    overshoot.increment(by: Int64(result.overshoot.nanos))
                    logger.warning("actual cost exceeded the hold", metadata: [
                        "request_id": "\(settlement.requestID)", "overshoot_nanos": "\(result.overshoot.nanos)"])
                }
                markPosted(batch.count)
                try? await journal.acknowledge(batch.map(\.requestID))
                return true
            } catch where Self.isRefusal(error) {
                // Postgres refused the statement for good (nothing was committed). Retrying the
                // same batch would block every settlement behind it, so find the refused one(s):
                // the others post; a refused one stays in the journal, unacknowledged, for an
                // operator (and the next start) and its hold for the reaper. Nothing is lost.
                guard batch.count > 1 else {
                    refused.increment()
                    logger.error("settlement refused by the database; left in the journal", metadata: [
                        "request_id": "\(batch[0].requestID)", "error": "\(String(reflecting: error))"])
                    markPosted(1)
                    return true
                }
                let half = batch.count / 2
                guard await post(Array(batch[..<half])) else { return false }
                return await post(Array(batch[half...]))
            } catch {
                // Cancelled (stopped without a graceful shutdown): the batch stays in the journal
                // for the next start. Retrying would spin, as every wait now ends at once.
                if Task.isCancelled { return false }
                logger.warning("settlement deferred: database unreachable", metadata: [
                    "count": "\(batch.count)", "retry_in": "\(delay)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}

/// Append-only journal of settlements: `S <json>` before posting, `A <request id>` once posted.
/// Settlement writes are fsync'd before they return. Writes run on one serial queue, off the async pool.
final class SettlementJournal: Sendable {
    private let url: URL
    private let queue = DispatchQueue(label: "tollgate.settlement-journal")
    private let handle: Locked<FileHandle?>
    private let open = Locked(Set<UUID>())
    /// Bytes written since the last truncation.
    private let written = Locked(0)
    /// Truncating costs an fsync, so it waits until the journal is worth it, not every idle moment.
    static let compactionThreshold = 1 << 20

    init(directory: String, name: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        url = URL(fileURLWithPath: directory).appendingPathComponent("settlements-\(name).journal")
        if !FileManager.default.fileExists(atPath: url.path) {
            FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        let handle = try FileHandle(forWritingTo: url)
        written.withLock { $0 = Int((try? handle.seekToEnd()) ?? 0) }
        self.handle = Locked(handle)
    }

    /// Appends a batch in one write and one fsync.
    func append(_ settlements: [Settlement]) async throws {
        guard !settlements.isEmpty else { return }
        var text = ""
        for settlement in settlements {
            text += "S "
            text += settlement.journalJSON
            text += "\n"
        }
        let data = Data(text.utf8)
        open.withLock { open in for s in settlements { open.insert(s.requestID) } }
        try await write(data)
    }

    /// Acknowledgements are not fsync'd: losing one only means a harmless replay (settling a
    /// request twice does nothing the second time).
    func acknowledge(_ requestIDs: [UUID]) async throws {
        open.withLock { open in for id in requestIDs { open.remove(id) } }
        let text = requestIDs.map { "A \($0.apiString)\n" }.joined()
        written.withLock { $0 += text.utf8.count }
        try await onQueue { handle in try handle.write(contentsOf: Data(text.utf8)) }
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

    /// Truncates the journal when nothing in it is outstanding and it has grown past the threshold.
    func compactIfIdle() async throws {
        guard open.withLock({ $0.isEmpty }), written.withLock({ $0 >= Self.compactionThreshold }) else { return }
        let open = self.open
        let written = self.written
        try await onQueue { handle in
            // Checked again on the write queue: an append that registered its ids before this ran
            // has its write queued after us or already done, and must not be truncated away.
            guard open.withLock({ $0.isEmpty }) else { return }
            try handle.truncate(atOffset: 0)
            try handle.synchronize()
            written.withLock { $0 = 0 }
        }
    }

    private func write(_ data: Data) async throws {
        written.withLock { $0 += data.count }
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

extension Settlement {
    /// The journal's JSON for one settlement, written by hand because JSONEncoder was a few percent
    /// of the proxy's CPU per request. Read back with the synthesized Decodable (tested).
    var journalJSON: String {
        var json = #"{"requestID":""# + requestID.apiString + #"","costNanos":"# + String(costNanos)
        json += #","promptTokens":"# + String(promptTokens) + #","completionTokens":"# + String(completionTokens)
        json += #","cachedTokens":"# + String(cachedTokens) + #","pages":"# + String(pages)
        json += #","statusCode":"# + String(statusCode) + #","estimated":"# + (estimated ? "true" : "false")
        if let credentialID { json += #","credentialID":""# + credentialID.apiString + #"""# }
        if let upstreamLatencyMs { json += #","upstreamLatencyMs":"# + String(upstreamLatencyMs) }
        if let totalLatencyMs { json += #","totalLatencyMs":"# + String(totalLatencyMs) }
        if isRelease { json += #","released":true"# }
        if let ledger {
            json += #","ledger":{"requestID":""# + ledger.requestID.apiString + #"","startedAtMs":"# + String(ledger.startedAtMs)
            json += #","endpoint":"# + JSONText.quoted(ledger.endpoint)
            if let model = ledger.model { json += #","model":"# + JSONText.quoted(model) }
            if let metadata = ledger.metadataJSON { json += #","metadataJSON":"# + JSONText.quoted(metadata) }
            if let traceparent = ledger.traceparent { json += #","traceparent":"# + JSONText.quoted(traceparent) }
            json += "}"
        }
        return json + "}"
    }
}
