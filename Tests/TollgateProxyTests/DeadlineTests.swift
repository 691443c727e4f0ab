import Foundation
import NIOConcurrencyHelpers
import Testing
@testable import TollgateProxy

/// `withDeadline` bounds every database call of the data plane; it must return at its deadline even
/// when the call under it ignores cancellation (as some do when Postgres stops under load).
@Suite("Deadline")
struct DeadlineTests {
    // Generous deadlines: the parallel suite can keep this process's threads busy for seconds.
    @Test func returnsTheResultWhenInTime() async throws {
        #expect(try await withDeadline(.seconds(60)) { 42 } == 42)
        await #expect(throws: CocoaError.self) {
            try await withDeadline(.seconds(60)) { () async throws -> Int in throw CocoaError(.fileNoSuchFile) }
        }
    }

    @Test func givesUpAtTheDeadlineEvenIfTheWorkIgnoresCancellation() async throws {
        let release = NIOLockedValueBox<CheckedContinuation<Void, Never>?>(nil)
        let workEnded = NIOLockedValueBox(false)
        // The work ignores cancellation and ends only when released: by this test once the deadline
        // has passed, or after 60 s (so a version that waits for the work fails instead of hanging).
        let releaser = Task {
            try? await Task.sleep(for: .seconds(60))
            release.withLockedValue { $0?.resume(); $0 = nil }
        }
        await #expect(throws: DeadlineExceeded.self) {
            try await withDeadline(.milliseconds(100)) { () async throws -> Int in
                await withCheckedContinuation { continuation in release.withLockedValue { $0 = continuation } }
                workEnded.withLockedValue { $0 = true }
                return 1
            }
        }
        // No clock involved: the deadline was reported while the work was still stuck.
        #expect(!workEnded.withLockedValue { $0 }, "returned at the deadline, not when the work ended")
        releaser.cancel()
        release.withLockedValue { $0?.resume(); $0 = nil }
    }

    @Test func cancellingTheCallerEndsTheWaitAndCancelsTheWork() async throws {
        let workCancelled = NIOLockedValueBox(false)
        let task = Task {
            try await withDeadline(.seconds(60)) { () async throws -> Int in
                do {
                    try await Task.sleep(for: .seconds(60))
                } catch {
                    workCancelled.withLockedValue { $0 = true }
                    throw error
                }
                return 1
            }
        }
        try await Task.sleep(for: .milliseconds(100))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        for _ in 0..<500 where !workCancelled.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(workCancelled.withLockedValue { $0 })
    }
}
