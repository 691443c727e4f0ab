/// Runs `body`, giving up with `DeadlineExceeded` after `limit`. The data plane bounds every
/// database call this way: with Postgres gone, a pool may wait for a connection indefinitely,
/// and a request must fail closed quickly (503) instead of hanging.
func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw DeadlineExceeded() }
        return value
    }
}

struct DeadlineExceeded: Error {}
