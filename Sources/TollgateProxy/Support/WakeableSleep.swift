import NIOCore
import NIOPosix

/// A sleep that someone can end early, on one event-loop timer.
///
/// Why: the settlement loops linger a few milliseconds before each journal write and post, and
/// must stop lingering as soon as a request waits for them. Polling that condition every
/// millisecond with `Task.sleep` cost five Dispatch timer wake-ups per linger (the Dispatch manager
/// thread, then the task), a visible share of the proxy's CPU at low load. One sleeper at a time.
final class WakeableSleep: Sendable {
    private struct State {
        var sleeper: CheckedContinuation<Void, Never>?
        /// Identifies the current sleep, so a late timer cannot end a later one.
        var generation: UInt64 = 0
        /// A wake-up that came while nobody slept ends the next sleep at once.
        var pendingWake = false
    }
    private let state = Locked(State())

    /// Returns after `duration`, or earlier when `wake()` is called.
    func sleep(for duration: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let generation = state.withLock { s -> UInt64? in
                if s.pendingWake { s.pendingWake = false; return nil }
                s.generation &+= 1
                s.sleeper = continuation
                return s.generation
            }
            guard let generation else { return continuation.resume() }
            MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(duration.nanoseconds)) { [self] in
                let sleeper = state.withLock { s -> CheckedContinuation<Void, Never>? in
                    guard s.generation == generation else { return nil }
                    defer { s.sleeper = nil }
                    return s.sleeper
                }
                sleeper?.resume()
            }
        }
    }

    /// Whether a sleep is under way (for tests).
    var isAsleep: Bool { state.withLock { $0.sleeper != nil } }

    /// Ends the current sleep now, or the next one as soon as it starts.
    func wake() {
        let sleeper = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let sleeper = s.sleeper else { s.pendingWake = true; return nil }
            s.sleeper = nil
            return sleeper
        }
        sleeper?.resume()
    }
}
