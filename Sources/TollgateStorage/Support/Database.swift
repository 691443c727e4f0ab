import Foundation
import Logging
import PostgresNIO

/// The pooled Postgres client plus the logger used for queries. Reads lease a connection;
/// writes run in a transaction so that a change and its audit row commit together or not at all.
public struct Database: Sendable {
    public let client: PostgresClient
    public let logger: Logger

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    public func read<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withConnection { connection in try await body(connection) }
        } catch {
            throw error.classified()
        }
    }

    public func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        } catch let error as PostgresTransactionError {
            // Surface the caller's own error (e.g. "not found") rather than the wrapper.
            if let closureError = error.closureError { throw closureError.classified() }
            throw error
        } catch {
            throw error.classified()
        }
    }

    /// Whether the server answers.
    public func ping() async -> Bool {
        (try? await client.query("SELECT 1", logger: logger)) != nil
    }

    /// Throws if the server does not answer.
    public func requireReachable() async throws {
        try await client.query("SELECT 1", logger: logger)
    }
}

/// Builds a client configuration from a `postgres://user:password@host:port/database` URL.
/// Query parameters: `sslmode=disable|prefer|require` and `host=/path/to/socket/dir` for unix sockets.
public enum DatabaseURL {
    public static func configuration(from text: String) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: text),
              components.scheme == "postgres" || components.scheme == "postgresql" else {
            throw DatabaseURLError.malformed
        }
        let user = components.user.map { $0.removingPercentEncoding ?? $0 } ?? "postgres"
        let password = components.password.map { $0.removingPercentEncoding ?? $0 }
        var database = components.path
        if database.hasPrefix("/") { database.removeFirst() }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let port = components.port ?? 5432
        var configuration: PostgresClient.Configuration
        if let socketDir = query["host"], socketDir.hasPrefix("/") {
            configuration = .init(unixSocketPath: "\(socketDir)/.s.PGSQL.\(port)", username: user,
                                  password: password, database: database.isEmpty ? nil : database)
        } else {
            let tls: PostgresClient.Configuration.TLS
            switch query["sslmode"] ?? "prefer" {
            case "disable": tls = .disable
            case "require", "verify-full", "verify-ca": tls = .require(.makeClientConfiguration())
            default: tls = .prefer(.makeClientConfiguration())
            }
            configuration = .init(host: components.host ?? "127.0.0.1", port: port, username: user,
                                  password: password, database: database.isEmpty ? nil : database, tls: tls)
        }
        return configuration
    }
}

public enum DatabaseURLError: Error, CustomStringConvertible {
    case malformed
    public var description: String { "DATABASE_URL must look like postgres://user:password@host:5432/database" }
}

extension PSQLError {
    /// The SQLSTATE code the server reported, e.g. 23505 for a unique violation.
    public var sqlState: String? { serverInfo?[.sqlState] }
    public var constraintName: String? { serverInfo?[.constraintName] }
}

public enum StorageError: Error, Equatable {
    case notFound
    /// A unique constraint was violated; the associated value names the constraint.
    case conflict(String)
    /// A CHECK constraint refused a value that validation should have caught first.
    case invalid(String)
}

extension Error {
    /// Maps unique violations to `StorageError.conflict` so callers can answer 409.
    func classified() -> any Error {
        if let error = self as? PSQLError, error.sqlState == "23505" {
            return StorageError.conflict(error.constraintName ?? "unique")
        }
        if let error = self as? PSQLError, error.sqlState == "23514" {
            return StorageError.invalid(error.constraintName ?? "check")
        }
        return self
    }
}
