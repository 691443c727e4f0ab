import Foundation

#if canImport(Glibc)
import Glibc

/// A throwaway Postgres cluster in a temp dir under /tmp, owned by this test process.
///
/// Lifecycle:
/// - `start()` creates `/tmp/tgpg-XXXXXX/` (data dir `data/`, unix socket, logs), runs
///   `initdb --no-sync -A trust -U tollgate`, appends the test settings to postgresql.conf and runs
///   `pg_ctl -w start` on a free 127.0.0.1 port (retrying on a port collision).
/// - As root, initdb/pg_ctl run through `runuser -u postgres --` and the temp dir is chowned to postgres.
/// - Cleanup, best effort, two layers:
///   1. an `atexit` hook runs `pg_ctl stop -m immediate` and deletes the temp dir;
///   2. a watchdog `sh` loop (own session, all fds closed) polls `kill -0 <test pid>` once a second
///      and does the same once the test process is gone — so a SIGKILLed test binary (e.g. from
///      `timeout -s KILL`, which kills the whole process group) does not leave a postmaster behind.
///      The postmaster itself is in its own session (pg_ctl calls setsid), so it survives group kills.
struct LocalCluster: Sendable {
    static let username = "tollgate"

    let baseDirectory: String
    let dataDirectory: String
    let binDirectory: String
    let port: Int
    /// `["/usr/sbin/runuser", "-u", "postgres", "--"]` when running as root, else `[]`.
    let commandPrefix: [String]

    struct StartError: Error, CustomStringConvertible {
        var description: String
    }

    var stopCommand: [String] {
        commandPrefix + [binDirectory + "/pg_ctl", "-D", dataDirectory, "-m", "immediate", "stop"]
    }

    /// Blocking. Call from `runBlocking`.
    static func start() throws -> LocalCluster {
        var template = Array("/tmp/tgpg-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw StartError(description: "mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        let base = String(cString: created)
        var prefix: [String] = []
        if geteuid() == 0 {
            guard let pw = getpwnam("postgres") else {
                throw StartError(description: "running as root but there is no `postgres` user to run initdb/postgres as")
            }
            guard chown(base, pw.pointee.pw_uid, pw.pointee.pw_gid) == 0 else {
                throw StartError(description: "chown \(base): \(String(cString: strerror(errno)))")
            }
            let candidates: [String] = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
            let runuser = candidates.first { access($0, X_OK) == 0 } ?? "/usr/sbin/runuser"
            prefix = [runuser, "-u", "postgres", "--"]
        }
        let data = base + "/data"
        // On failure the temp dir (with its logs) stays until the atexit hook / watchdog remove it.
        do {
            let bin = try findBinDirectory(scratch: base)
            let cluster0 = LocalCluster(
                baseDirectory: base, dataDirectory: data, binDirectory: bin, port: 0, commandPrefix: prefix)
            // Watchdog first, so even a kill during start-up gets cleaned up.
            try cluster0.startWatchdog()
            ClusterRegistry.shared.register(cluster0)

            let initdbLog = base + "/initdb.log"
            let initdb = prefix + [
                bin + "/initdb", "-D", data, "--no-sync", "-A", "trust", "-U", username,
                "-E", "UTF8", "--locale=C",
            ]
            let status = try ChildProcess.run(initdb, output: initdbLog, workingDirectory: base)
            guard status == 0 else {
                throw StartError(description: "initdb exited with \(status):\n\(tail(initdbLog))")
            }
            let settings = """

                # --- TollgateTestSupport (throwaway test cluster) ---
                listen_addresses = '127.0.0.1'
                unix_socket_directories = '\(base)'
                max_connections = 1000
                fsync = off
                synchronous_commit = off
                full_page_writes = off

                """
            guard let handle = FileHandle(forWritingAtPath: data + "/postgresql.conf") else {
                throw StartError(description: "cannot open \(data)/postgresql.conf")
            }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(settings.utf8))
            try handle.close()

            var lastError = ""
            for _ in 0..<8 {
                let cluster = LocalCluster(
                    baseDirectory: base, dataDirectory: data, binDirectory: bin, port: try freePort(),
                    commandPrefix: prefix)
                do {
                    try cluster.startServer()
                    return cluster
                } catch let error as StartError {
                    lastError = error.description
                    guard lastError.contains("could not bind") || lastError.contains("already in use") else { break }
                }
            }
            throw StartError(description: lastError)
        }
    }

    /// Blocking: `pg_ctl start` on this cluster's data directory and port, waiting until it accepts
    /// connections. Also starts a cluster again after `stopServer()`.
    func startServer() throws {
        let serverLog = baseDirectory + "/postgres.log"
        let pgCtlLog = baseDirectory + "/pg_ctl.log"
        let start = commandPrefix + [
            binDirectory + "/pg_ctl", "-D", dataDirectory, "-l", serverLog, "-w", "-t", "60", "-o", "-p \(port)", "start",
        ]
        let status = try ChildProcess.run(start, output: pgCtlLog, workingDirectory: baseDirectory)
        guard status == 0 else {
            throw StartError(description: "pg_ctl start exited with \(status):\n\(Self.tail(pgCtlLog))\n\(Self.tail(serverLog))")
        }
    }

    /// Blocking: `pg_ctl -m fast stop`, waiting until the server is down (sessions are ended,
    /// open transactions rolled back, as when an operator stops the database).
    func stopServer() throws {
        let pgCtlLog = baseDirectory + "/pg_ctl.log"
        let stop = commandPrefix + [binDirectory + "/pg_ctl", "-D", dataDirectory, "-m", "fast", "-w", "-t", "60", "stop"]
        let status = try ChildProcess.run(stop, output: pgCtlLog, workingDirectory: baseDirectory)
        guard status == 0 else {
            throw StartError(description: "pg_ctl stop exited with \(status):\n\(Self.tail(pgCtlLog))")
        }
    }

    /// `TOLLGATE_PG_BINDIR`, else `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin.
    private static func findBinDirectory(scratch: String) throws -> String {
        if let dir = ProcessInfo.processInfo.environment["TOLLGATE_PG_BINDIR"], !dir.isEmpty { return dir }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        let candidates: [String] = path.split(separator: ":").map { "\($0)/pg_config" }
        if let pgConfig = candidates.first(where: { access($0, X_OK) == 0 }) {
            let out = scratch + "/pg_config.out"
            if try ChildProcess.run([pgConfig, "--bindir"], output: out) == 0,
               let dir = try? String(contentsOfFile: out, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
               access(dir + "/initdb", X_OK) == 0 {
                return dir
            }
        }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted(by: >)
        for version in versions where access("\(root)/\(version)/bin/initdb", X_OK) == 0 {
            return "\(root)/\(version)/bin"
        }
        throw StartError(description: "no Postgres binaries found (pg_config --bindir, /usr/lib/postgresql/*/bin); set TOLLGATE_PG_BINDIR")
    }

    /// Binds 127.0.0.1:0 and returns the port the kernel chose (then closes the socket).
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StartError(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw StartError(description: "bind: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw StartError(description: "getsockname: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private func startWatchdog() throws {
        let script = """
            pid=$1; dir=$2; shift 2
            while kill -0 "$pid" 2>/dev/null; do sleep 1; done
            if [ -f "$dir/data/postmaster.pid" ]; then "$@"; fi
            rm -rf "$dir"
            """
        let argv = ["/bin/sh", "-c", script, "tollgate-pg-watchdog", String(getpid()), baseDirectory] + stopCommand
        _ = try ChildProcess.spawn(argv, newSession: true)
    }

    /// Blocking, best effort: stop the server immediately and delete the temp dir.
    func destroy() {
        if FileManager.default.fileExists(atPath: dataDirectory + "/postmaster.pid") {
            _ = try? ChildProcess.run(stopCommand, workingDirectory: "/")
        }
        try? FileManager.default.removeItem(atPath: baseDirectory)
    }

    private static func tail(_ path: String, lines: Int = 30) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "(no \(path))" }
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }
}

/// Clusters to tear down at process exit.
final class ClusterRegistry: @unchecked Sendable {
    static let shared = ClusterRegistry()
    private let lock = NSLock()
    private var clusters: [String: LocalCluster] = [:]
    private var hookInstalled = false

    func register(_ cluster: LocalCluster) {
        lock.lock()
        defer { lock.unlock() }
        clusters[cluster.baseDirectory] = cluster
        if !hookInstalled {
            hookInstalled = true
            atexit { ClusterRegistry.shared.destroyAll() }
        }
    }

    /// Tears one cluster down now (it is no longer torn down at exit).
    func destroy(_ cluster: LocalCluster) {
        lock.lock()
        clusters[cluster.baseDirectory] = nil
        lock.unlock()
        cluster.destroy()
    }

    func destroyAll() {
        lock.lock()
        let all = Array(clusters.values)
        clusters.removeAll()
        lock.unlock()
        for cluster in all { cluster.destroy() }
    }
}
#endif
