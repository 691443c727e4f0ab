#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging

/// The process's limit on open file descriptors, which caps its connections: every client,
/// Postgres and upstream connection holds one.
///
/// Why raise it: the soft limit is often 1024 while the hard limit is far higher, and a gateway
/// reaching the soft limit fails in ways that are hard to see (accepts back off, new database and
/// upstream connections fail). The servers and the test process raise the soft limit to the hard
/// one at start, as nginx's `worker_rlimit_nofile` and Go's runtime do; the operator's hard limit
/// (systemd `LimitNOFILE`, `ulimit -Hn`) stays the ceiling.
public enum OpenFileLimit {
    public struct Limits: Sendable, Equatable {
        public var soft: UInt64
        public var hard: UInt64
    }

    /// The current soft and hard limits.
    public static var current: Limits {
        var limit = rlimit()
        guard getrlimit(resourceNumber, &limit) == 0 else { return Limits(soft: 0, hard: 0) }
        return Limits(soft: UInt64(limit.rlim_cur), hard: UInt64(limit.rlim_max))
    }

    /// Raises the soft limit to the hard limit (when the hard limit is unlimited, to `cap`, since
    /// some kernels refuse an unlimited soft limit) and returns the limits now in force.
    @discardableResult
    public static func raiseToHardLimit(cap: UInt64 = 1 << 20) -> Limits {
        var limit = rlimit()
        guard getrlimit(resourceNumber, &limit) == 0 else { return current }
        // rlim_t.max is RLIM_INFINITY (the C macro does not import).
        let target = limit.rlim_max == rlim_t.max ? max(limit.rlim_cur, rlim_t(cap)) : limit.rlim_max
        if limit.rlim_cur != rlim_t.max, limit.rlim_cur < target {
            limit.rlim_cur = target
            _ = setrlimit(resourceNumber, &limit)
        }
        return current
    }

    /// For a server at start: raises the soft limit and warns when it stays below `warningBelow`
    /// (each client, Postgres and upstream connection holds a descriptor).
    public static func raiseForServer(warningBelow: UInt64 = 4096, logger: Logger) {
        let limits = raiseToHardLimit()
        if limits.soft < warningBelow {
            logger.warning("low open-file limit: connections beyond it will fail", metadata: [
                "limit": "\(limits.soft)", "hard_limit": "\(limits.hard)"])
        }
    }

    #if canImport(Glibc)
    private static let resourceNumber = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resourceNumber = RLIMIT_NOFILE
    #endif
}
