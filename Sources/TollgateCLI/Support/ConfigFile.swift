import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The CLI's config file: named contexts (admin URL + token), like kubectl contexts.
///
/// ```json
/// {
///   "currentContext": "prod",
///   "contexts": {
///     "prod":  { "adminUrl": "https://tollgate-admin.example.com", "token": "tg_admin_…" },
///     "local": { "adminUrl": "http://127.0.0.1:8081" }
///   }
/// }
/// ```
/// Location: `--config`, else `$TOLLGATE_CONFIG`, else `~/.config/tollgate/config.json`. It is
/// written with mode 0600 (directory 0700) because it holds tokens.
struct CLIConfig: Codable, Equatable {
    struct Context: Codable, Equatable {
        var adminUrl: String
        var token: String?
    }

    var currentContext: String?
    var contexts: [String: Context] = [:]

    init(currentContext: String? = nil, contexts: [String: Context] = [:]) {
        self.currentContext = currentContext
        self.contexts = contexts
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        currentContext = try container.decodeIfPresent(String.self, forKey: .currentContext)
        contexts = try container.decodeIfPresent([String: Context].self, forKey: .contexts) ?? [:]
    }
}

struct ConfigStore {
    let path: String

    /// `explicit` (from `--config`), else `$TOLLGATE_CONFIG`, else `$HOME/.config/tollgate/config.json`.
    static func resolve(explicit: String?, environment: CLIEnvironment) throws -> ConfigStore {
        if let explicit, !explicit.isEmpty { return ConfigStore(path: expandTilde(explicit, environment)) }
        if let fromEnv = environment.variables["TOLLGATE_CONFIG"], !fromEnv.isEmpty {
            return ConfigStore(path: expandTilde(fromEnv, environment))
        }
        guard let home = environment.variables["HOME"], !home.isEmpty else {
            throw CLIError.usage("Cannot locate the config file: set HOME, TOLLGATE_CONFIG or --config")
        }
        return ConfigStore(path: home + "/.config/tollgate/config.json")
    }

    private static func expandTilde(_ path: String, _ environment: CLIEnvironment) -> String {
        guard path.hasPrefix("~/"), let home = environment.variables["HOME"] else { return path }
        return home + path.dropFirst()
    }

    /// The config, or an empty one if the file does not exist. Warns when others can read it.
    func load() throws -> CLIConfig {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return CLIConfig() }
            throw CLIError.failure("Cannot read config file \(path): \(String(cString: strerror(errno)))")
        }
        if info.st_mode & 0o077 != 0 {
            warn("warning: config file \(path) is readable by other users; run: chmod 600 \(path)")
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CLIError.failure("Cannot read config file \(path): \(error.localizedDescription)")
        }
        do { return try JSONDecoder().decode(CLIConfig.self, from: data) } catch {
            throw CLIError.failure("Config file \(path) is not valid: \(oneLine(String(describing: error)))")
        }
    }

    /// Writes atomically (temporary file + rename) with mode 0600, creating the directory with 0700.
    func save(_ config: CLIConfig) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw CLIError.failure("Cannot create \(directory): \(error.localizedDescription)")
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(config) + Data("\n".utf8)
        let temporary = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw CLIError.failure("Cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { buffer in write(fd, buffer.baseAddress, buffer.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == data.count, synced == 0, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CLIError.failure("Cannot write config file \(path): \(reason)")
        }
        _ = chmod(path, 0o600)
    }
}
