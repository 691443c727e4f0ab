import Foundation
import TollgateDomain

/// Settings of `tollgate-admin`, read from the environment (see README, "Configuration").
public struct AdminConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var databaseURL: String
    /// Apply pending migrations at start (`TOLLGATE_MIGRATE_ON_START`, default true).
    public var migrateOnStart: Bool
    /// Largest accepted request body in bytes (`TOLLGATE_ADMIN_MAX_BODY_BYTES`).
    public var maxBodyBytes: Int
    /// Allow http:// and private/loopback credential base URLs (`TOLLGATE_ALLOW_PRIVATE_UPSTREAMS`);
    /// for local stacks and tests only.
    public var allowPrivateUpstreams: Bool
    /// Close connections idle this long (`TOLLGATE_ADMIN_IDLE_TIMEOUT_SECONDS`).
    public var idleTimeoutSeconds: Int
    public var databasePoolSize: Int

    public init(host: String = "127.0.0.1", port: Int = 8081, databaseURL: String, migrateOnStart: Bool = true,
                maxBodyBytes: Int = 256 * 1024, allowPrivateUpstreams: Bool = false, idleTimeoutSeconds: Int = 60,
                databasePoolSize: Int = 10) {
        self.host = host; self.port = port; self.databaseURL = databaseURL; self.migrateOnStart = migrateOnStart
        self.maxBodyBytes = maxBodyBytes; self.allowPrivateUpstreams = allowPrivateUpstreams
        self.idleTimeoutSeconds = idleTimeoutSeconds; self.databasePoolSize = databasePoolSize
    }

    public static func load(environment env: [String: String]) throws -> AdminConfiguration {
        guard let url = env["DATABASE_URL"], !url.isEmpty else {
            throw ConfigurationError("DATABASE_URL is not set (postgres://user:password@host:5432/database)")
        }
        func int(_ name: String, _ fallback: Int, _ range: ClosedRange<Int>) throws -> Int {
            guard let text = env[name], !text.isEmpty else { return fallback }
            guard let value = Int(text), range.contains(value) else {
                throw ConfigurationError("\(name) must be an integer between \(range.lowerBound) and \(range.upperBound)")
            }
            return value
        }
        func bool(_ name: String, _ fallback: Bool) throws -> Bool {
            guard let text = env[name]?.lowercased(), !text.isEmpty else { return fallback }
            switch text {
            case "1", "true", "yes", "on": return true
            case "0", "false", "no", "off": return false
            default: throw ConfigurationError("\(name) must be true or false")
            }
        }
        return AdminConfiguration(
            host: env["TOLLGATE_ADMIN_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1",
            port: try int("TOLLGATE_ADMIN_PORT", 8081, 0...65535),
            databaseURL: url,
            migrateOnStart: try bool("TOLLGATE_MIGRATE_ON_START", true),
            maxBodyBytes: try int("TOLLGATE_ADMIN_MAX_BODY_BYTES", 256 * 1024, 1024...(16 * 1024 * 1024)),
            allowPrivateUpstreams: try bool("TOLLGATE_ALLOW_PRIVATE_UPSTREAMS", false),
            idleTimeoutSeconds: try int("TOLLGATE_ADMIN_IDLE_TIMEOUT_SECONDS", 60, 1...3600),
            databasePoolSize: try int("TOLLGATE_DATABASE_POOL_SIZE", 10, 1...200))
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
