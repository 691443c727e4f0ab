import Foundation
import NIOCore
import NIOPosix

/// Reads a streamed upstream body ahead of the relay, in one task for the whole stream, and
/// hands the relay everything received so far at once.
///
/// Why: Mistral sends one HTTP chunk per SSE event and the HTTP client yields them one by one.
/// Relaying each on its own cost a client write (a flush, a syscall) per event, and timing each
/// read for the idle timeout cost a task and a timer per event: measured, a 19-event stream used
/// twice the proxy CPU of the same answer as JSON. Here the relay writes whatever has arrived in
/// one go (nothing waits for more, so a lone event goes out as soon as it comes), and one timer
/// per stream checks for silence, re-armed at most once per idle period.
///
/// Idle timeout: only time spent waiting for Mistral counts. When the relay falls behind (a slow
/// client), the reader stops at `highWater` buffered bytes and the clock stops with it. When
/// Mistral is silent for `idleTimeout`, the reader is cancelled (the HTTP client then closes the
/// upstream connection) and, after what was already received, `next()` throws `stalledError`.
final class StreamPump<Base: AsyncSequence & Sendable>: @unchecked Sendable where Base.Element == ByteBuffer {
    private let base: Base
    private let idleTimeout: Duration
    private let highWater: Int
    private let stalledError: any Error

    private let lock = NSLock()
    private var chunks: [ByteBuffer] = []
    private var bufferedBytes = 0
    /// nil while the body is still coming.
    private var end: Result<Void, any Error>?
    private var consumer: CheckedContinuation<ByteBuffer?, any Error>?
    /// The reader, waiting for the relay to make room.
    private var producer: CheckedContinuation<Bool, Never>?
    /// When the reader last started waiting for Mistral; nil while it is not waiting for Mistral.
    private var waitingSince: NIODeadline?
    private var stalled = false
    private var closed = false
    private var reader: Task<Void, Never>?
    private var timer: Scheduled<Void>?

    init(base: Base, idleTimeout: Duration, highWater: Int = 256 * 1024, stalledError: any Error) {
        self.base = base
        self.idleTimeout = idleTimeout
        self.highWater = highWater
        self.stalledError = stalledError
    }

    /// Starts reading; called once, by the first `next()`.
    private func startIfNeeded() {
        lock.lock()
        guard reader == nil, !closed else {
            lock.unlock()
            return
        }
        reader = Task { [self] in await read() }
        lock.unlock()
        arm(at: .now() + .nanoseconds(idleTimeout.nanoseconds))
    }

    /// Everything received since the last call, as one buffer; nil at the end of the body.
    func next() async throws -> ByteBuffer? {
        startIfNeeded()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ByteBuffer?, any Error>) in
                lock.lock()
                if let taken = takeLocked() {
                    let producer = self.producer
                    self.producer = nil
                    lock.unlock()
                    producer?.resume(returning: true)
                    continuation.resume(returning: taken)
                } else if let end {
                    lock.unlock()
                    continuation.resume(with: end.map { nil })
                } else if closed {
                    lock.unlock()
                    continuation.resume(throwing: CancellationError())
                } else {
                    consumer = continuation
                    lock.unlock()
                }
            }
        } onCancel: {
            close()
        }
    }

    /// Stops reading (the relay is gone): cancels the reader and ends any wait.
    func close() {
        lock.lock()
        closed = true
        let reader = self.reader, timer = self.timer, consumer = self.consumer, producer = self.producer
        self.timer = nil
        self.consumer = nil
        self.producer = nil
        lock.unlock()
        reader?.cancel()
        timer?.cancel()
        producer?.resume(returning: false)
        consumer?.resume(throwing: CancellationError())
    }

    // MARK: Reader

    private func read() async {
        var iterator = base.makeAsyncIterator()
        while true {
            markWaiting()
            let outcome: Result<ByteBuffer?, any Error>
            do { outcome = .success(try await iterator.next()) } catch { outcome = .failure(error) }
            if isStalled {
                // However the cancelled read ended (an error, the end, a last chunk), it ended
                // because Mistral went silent.
                if case .success(let chunk?) = outcome { _ = offer(chunk) }
                finish(.failure(stalledError))
                return
            }
            switch outcome {
            case .failure(let error):
                finish(.failure(error))
                return
            case .success(nil):
                finish(.success(()))
                return
            case .success(let chunk?):
                switch offer(chunk) {
                case .taken: continue
                case .closed: return
                case .full:
                    guard await roomToRead() else { return }
                }
            }
        }
    }

    private var isStalled: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stalled
    }

    private func markWaiting() {
        lock.lock()
        waitingSince = .now()
        lock.unlock()
    }

    private enum Offer { case taken, full, closed }

    /// Hands `chunk` to a waiting relay, or buffers it.
    private func offer(_ chunk: ByteBuffer) -> Offer {
        lock.lock()
        waitingSince = nil
        if closed {
            lock.unlock()
            return .closed
        }
        if let consumer {
            self.consumer = nil
            lock.unlock()
            consumer.resume(returning: chunk)
            return .taken
        }
        chunks.append(chunk)
        bufferedBytes += chunk.readableBytes
        let full = bufferedBytes >= highWater
        lock.unlock()
        return full ? .full : .taken
    }

    /// Waits until the relay has taken the buffer; false once the relay is gone.
    private func roomToRead() async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            lock.lock()
            if closed {
                lock.unlock()
                continuation.resume(returning: false)
            } else if bufferedBytes < highWater {
                lock.unlock()
                continuation.resume(returning: true)
            } else {
                producer = continuation
                lock.unlock()
            }
        }
    }

    private func finish(_ result: Result<Void, any Error>) {
        lock.lock()
        end = result
        let timer = self.timer, consumer = self.consumer
        self.timer = nil
        self.consumer = nil
        waitingSince = nil
        // A waiting relay has nothing buffered (it would have taken it).
        lock.unlock()
        timer?.cancel()
        consumer?.resume(with: result.map { nil })
    }

    /// Under `lock`: the buffered chunks as one buffer, or nil when there are none.
    private func takeLocked() -> ByteBuffer? {
        guard !chunks.isEmpty else { return nil }
        defer {
            chunks.removeAll(keepingCapacity: true)
            bufferedBytes = 0
        }
        if chunks.count == 1 { return chunks[0] }
        var merged = ByteBufferAllocator().buffer(capacity: bufferedBytes)
        for chunk in chunks { merged.writeImmutableBuffer(chunk) }
        return merged
    }

    /// Chunks read ahead and not yet taken (for tests).
    var bufferedChunkCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return chunks.count
    }

    // MARK: Idle timer

    private func arm(at deadline: NIODeadline) {
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(deadline: deadline) { [self] in check() }
        lock.lock()
        if end != nil || closed {
            lock.unlock()
            timer.cancel()
            return
        }
        self.timer = timer
        lock.unlock()
    }

    /// The timer fired: cut the stream if Mistral has been silent for the idle timeout, else
    /// look again when it would be.
    private func check() {
        let now = NIODeadline.now()
        let limit = TimeAmount.nanoseconds(idleTimeout.nanoseconds)
        lock.lock()
        guard end == nil, !closed else {
            lock.unlock()
            return
        }
        if let since = waitingSince, now - since >= limit {
            stalled = true
            let reader = self.reader
            lock.unlock()
            reader?.cancel()
            return
        }
        let next = (waitingSince ?? now) + limit
        lock.unlock()
        arm(at: next)
    }
}
