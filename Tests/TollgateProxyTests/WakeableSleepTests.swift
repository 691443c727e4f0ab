import Foundation
import Testing
@testable import TollgateProxy

/// The settlement loops' linger: ends at its deadline, or early when woken; a wake-up is never
/// lost and a stale timer never ends a later sleep. Bounds are loose (the parallel suite can
/// starve threads for seconds): only "ended far too early" or "never ended early" fail.
@Suite("Wakeable sleep")
struct WakeableSleepTests {
    @Test func endsAtItsDeadline() async {
        let sleep = WakeableSleep()
        let started = ContinuousClock.now
        await sleep.sleep(for: .milliseconds(100))
        #expect(ContinuousClock.now - started >= .milliseconds(95))
    }

    @Test func wakeEndsItEarly() async {
        let sleep = WakeableSleep()
        let started = ContinuousClock.now
        let waker = Task {
            try? await Task.sleep(for: .milliseconds(50))
            sleep.wake()
        }
        await sleep.sleep(for: .seconds(30))
        #expect(ContinuousClock.now - started < .seconds(20))
        await waker.value
    }

    @Test func aWakeBeforeTheSleepEndsTheNextSleepAtOnce() async {
        let sleep = WakeableSleep()
        sleep.wake()
        let started = ContinuousClock.now
        await sleep.sleep(for: .seconds(30))
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    /// The first sleep is woken early; its timer still fires later and must not end the second.
    @Test func aStaleTimerDoesNotEndALaterSleep() async {
        let sleep = WakeableSleep()
        let first = Task { await sleep.sleep(for: .milliseconds(100)) }
        // Wake it only once it sleeps, so its timer is really pending (not the early-wake path).
        while !sleep.isAsleep { try? await Task.sleep(for: .milliseconds(1)) }
        sleep.wake()
        await first.value
        let started = ContinuousClock.now
        await sleep.sleep(for: .milliseconds(1_500))
        #expect(ContinuousClock.now - started >= .milliseconds(1_400))
    }
}
