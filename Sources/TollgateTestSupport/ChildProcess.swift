import Foundation

#if canImport(Glibc)
import Glibc

/// Minimal `posix_spawn` wrapper used to run the Postgres tools.
///
/// Deliberately not Foundation's `Process`: the postmaster daemonises and would inherit every
/// descriptor that `Process` leaves open in the child (pitfall: `swift test` then hangs forever).
/// Here every child gets stdin = /dev/null, stdout/stderr = a log file (or /dev/null) and all
/// descriptors > 2 are closed (`posix_spawn_file_actions_addclosefrom_np`, glibc >= 2.34), so
/// nothing started from the test process can keep one of its pipes or sockets alive.
enum ChildProcess {
    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts `argv[0]` (an absolute path) and returns its pid without waiting.
    static func spawn(
        _ argv: [String],
        output: String? = nil,
        workingDirectory: String? = nil,
        newSession: Bool = false
    ) throws -> pid_t {
        precondition(!argv.isEmpty)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        try check(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0), "addopen stdin")
        try check(
            posix_spawn_file_actions_addopen(
                &actions, 1, output ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644),
            "addopen stdout")
        try check(posix_spawn_file_actions_adddup2(&actions, 1, 2), "adddup2 stderr")
        if let closefrom = Native.addclosefrom {
            try check(closefrom(&actions, 3), "addclosefrom")
        } else {
            // glibc < 2.34: close every descriptor open right now (closed ones are ignored by glibc).
            let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
            for fd in open.compactMap(Int32.init) where fd > 2 {
                try check(posix_spawn_file_actions_addclose(&actions, fd), "addclose")
            }
        }
        if let workingDirectory {
            guard let addchdir = Native.addchdir else {
                throw SpawnError(description: "posix_spawn_file_actions_addchdir_np unavailable (glibc < 2.29)")
            }
            try check(addchdir(&actions, workingDirectory), "addchdir")
        }
        // Reset signal mask and dispositions the test runner may have changed.
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newSession { flags |= Native.POSIX_SPAWN_SETSID }
        var empty = sigset_t()
        sigemptyset(&empty)
        try check(posix_spawnattr_setsigmask(&attributes, &empty), "setsigmask")
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
        try check(posix_spawnattr_setsigdefault(&attributes, &defaults), "setsigdefault")
        try check(posix_spawnattr_setflags(&attributes, Int16(flags)), "setflags")

        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        cArgs.append(nil)
        defer { for arg in cArgs { free(arg) } }

        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attributes, cArgs, environ)
        guard rc == 0 else {
            throw SpawnError(description: "posix_spawn \(argv[0]) failed: \(String(cString: strerror(rc)))")
        }
        return pid
    }

    /// Waits for `pid` and returns its exit code (128 + signal number if it was killed).
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            if errno != EINTR { return -1 }
        }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Spawns and waits (blocking the calling thread).
    @discardableResult
    static func run(_ argv: [String], output: String? = nil, workingDirectory: String? = nil) throws -> Int32 {
        wait(try spawn(argv, output: output, workingDirectory: workingDirectory))
    }

    /// glibc extensions the Swift Glibc module does not import (declared only under _GNU_SOURCE /
    /// __USE_MISC), looked up at run time.
    private enum Native {
        typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
        static let addclosefrom: AddClosefrom? = lookup("posix_spawn_file_actions_addclosefrom_np")
        static let addchdir: AddChdir? = lookup("posix_spawn_file_actions_addchdir_np")
        /// From <spawn.h> (glibc >= 2.26).
        static let POSIX_SPAWN_SETSID: Int32 = 0x80

        private static func lookup<F>(_ symbol: String) -> F? {
            guard let pointer = dlsym(UnsafeMutableRawPointer(bitPattern: 0), symbol) else { return nil }  // RTLD_DEFAULT
            return unsafeBitCast(pointer, to: F.self)
        }
    }

    private static func check(_ rc: Int32, _ what: String) throws {
        if rc != 0 { throw SpawnError(description: "posix_spawn \(what): \(String(cString: strerror(rc)))") }
    }
}
#endif

/// Runs blocking work (process spawning, waitpid) off the Swift concurrency pool.
func runBlocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try work() })
        }
    }
}
