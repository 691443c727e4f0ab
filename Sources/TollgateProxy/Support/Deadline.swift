import Foundation
import NIOCore
import NIOPosix

/// Runs `body`, giving up with `DeadlineExceeded` after `limit`. The data plane bounds every
/// database call this way: with Postgres gone, a pool may wait for a connection indefinitely,
/// and a request must fail closed quickly (503) instead of hanging.
///
/// The wait ends at the deadline even when `body` ignores cancellation: `body` is cancelled and
/// left to finish on its own. (A task group would wait for it, and with Postgres stopped under
/// load some database calls never return at all: the request, and the server's graceful
/// shutdown behind it, would hang for ever.) Cancelling the caller cancels `body` and throws
/// `CancellationError` at once.
func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = DeadlineRace<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            race.start(continuation, limit: limit, body: body)
        }
    } onCancel: {
        race.finish(.failure(CancellationError()))
    }
}

struct DeadlineExceeded: Error {}

/// `body` against a timer: the first to finish resumes the caller, once; both tasks are then cancelled.
private final class DeadlineRace<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, any Error>?
    /// Set when the race ended before `start` (the caller was cancelled first).
    private var earlyResult: Result<T, any Error>?
    private var finished = false
    private var work: Task<Void, Never>?
    /// An event-loop timer, not a sleeping task: cancelling `Task.sleep` on Linux leaves its
    /// Dispatch timer queued until the deadline (measured: memory grew by the number of reads in
    /// the last minute), while a cancelled scheduled task leaves the timer heap at once.
    private var timer: Scheduled<Void>?

    func start(_ continuation: CheckedContinuation<T, any Error>, limit: Duration,
               body: @escaping @Sendable () async throws -> T) {
        lock.lock()
        if finished, let earlyResult {
            lock.unlock()
            continuation.resume(with: earlyResult)
            return
        }
        self.continuation = continuation
        lock.unlock()

        let work = Task {
            do { self.finish(.success(try await body())) } catch { self.finish(.failure(error)) }
        }
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(limit.nanoseconds)) {
            self.finish(.failure(DeadlineExceeded()))
        }
        lock.lock()
        let over = finished
        if !over {
            self.work = work
            self.timer = timer
        }
        lock.unlock()
        if over {
            work.cancel()
            timer.cancel()
        }
    }

    func finish(_ result: Result<T, any Error>) {
        lock.lock()
        guard !finished else {
            lock.unlock()
            return
        }
        finished = true
        let continuation = self.continuation
        self.continuation = nil
        if continuation == nil { earlyResult = result }
        let work = self.work
        let timer = self.timer
        self.work = nil
        self.timer = nil
        lock.unlock()
        work?.cancel()
        timer?.cancel()
        continuation?.resume(with: result)
    }
}
