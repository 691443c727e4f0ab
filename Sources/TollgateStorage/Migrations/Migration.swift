import Crypto
import Foundation

/// One SQL file of `migrations/`, named `NNNN_description.sql`.
public struct Migration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let sql: String
    /// SHA-256 of the file's bytes, hex. An applied migration whose file changed stops startup.
    public let checksum: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = SHA256.hash(data: Data(sql.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Loads `NNNN_name.sql` files from a directory, ordered by version.
    public static func load(from directory: URL) throws -> [Migration] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }
        return try parse(files.map { ($0, try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8)) })
    }

    /// The migrations of this build: `TOLLGATE_MIGRATIONS_DIR` if set, otherwise the files of
    /// `migrations/` embedded at build time (so the executables need no resource files).
    public static func bundled(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [Migration] {
        if let dir = environment["TOLLGATE_MIGRATIONS_DIR"], !dir.isEmpty {
            return try load(from: URL(fileURLWithPath: dir))
        }
        return try parse(EmbeddedMigrations.files.map { ($0.name, $0.contents) })
    }

    static func parse(_ files: [(name: String, contents: String)]) throws -> [Migration] {
        guard !files.isEmpty else { throw MigrationError.notFound }
        var migrations: [Migration] = []
        for (file, sql) in files {
            let digits = file.prefix { $0.isNumber }
            guard digits.count == 4, let version = Int(digits), file.hasSuffix(".sql") else {
                throw MigrationError.badFileName(file)
            }
            migrations.append(Migration(version: version, name: String(file.dropLast(4)), sql: sql))
        }
        migrations.sort { $0.version < $1.version }
        for (a, b) in zip(migrations, migrations.dropFirst()) where a.version == b.version {
            throw MigrationError.duplicateVersion(a.version)
        }
        return migrations
    }
}

public enum MigrationError: Error, Equatable, CustomStringConvertible {
    case badFileName(String)
    case duplicateVersion(Int)
    case notFound
    case checksumMismatch(name: String)
    case unknownApplied(name: String)
    case failed(name: String, message: String)

    public var description: String {
        switch self {
        case .badFileName(let file): "migration file '\(file)' is not named NNNN_description.sql"
        case .duplicateVersion(let v): "two migration files share version \(v)"
        case .notFound: "no migrations found (set TOLLGATE_MIGRATIONS_DIR to the migrations/ folder)"
        case .checksumMismatch(let name):
            "migration \(name) was applied but its file has changed since; restore the file and add a new migration instead"
        case .unknownApplied(let name):
            "the database has migration \(name), which this build does not know; run a newer build"
        case .failed(let name, let message): "migration \(name) failed: \(message)"
        }
    }
}
