import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import Testing
import TollgateAdmin
import TollgateCLI
import TollgateDomain
import TollgateStorage
import TollgateTestSupport

/// Key material the test servers use; the CLI's direct-database commands get the same values
/// through their (injected) environment.
enum TestSecrets {
    static let pepper = SymmetricKey(data: SHA256.hash(data: Data("cli test pepper".utf8)))
    static let hasher = try! SecretHasher(pepper: pepper)
    static let masterKey = SymmetricKey(data: SHA256.hash(data: Data("cli test master key v1".utf8)))
    static let keyring = try! MasterKeyring(keys: [1: masterKey], primary: 1)

    static var pepperBase64: String { pepper.withUnsafeBytes { Data($0).base64EncodedString() } }
    static var masterKeysEntry: String { "1:" + masterKey.withUnsafeBytes { Data($0).base64EncodedString() } }
}

/// Thread-safe byte sink for a captured stream.
final class Capture: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ chunk: Data) { lock.lock(); data.append(chunk); lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}

struct CLIResult: Sendable {
    let arguments: [String]
    let code: Int32
    let stdout: String
    let stderr: String

    var output: String { stdout + stderr }

    /// stdout parsed as JSON (fails the test if it is not).
    func json() throws -> [String: Any] {
        let value = try JSONSerialization.jsonObject(with: Data(stdout.utf8))
        return try #require(value as? [String: Any], "not a JSON object: \(stdout)")
    }

    func data() throws -> [[String: Any]] { try json()["data"] as? [[String: Any]] ?? [] }

    var summary: String { "tollgate \(arguments.joined(separator: " ")) -> \(code)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Runs the CLI in-process with captured streams and a private environment (no process-global state).
struct CLI: Sendable {
    /// Environment every invocation gets (admin URL, HOME, …); per-call values override it.
    var environment: [String: String]

    func run(_ arguments: [String], token: String? = nil, stdin: String = "", terminalInput: String? = nil,
             stdoutIsTerminal: Bool = false, env extra: [String: String] = [:]) async -> CLIResult {
        let out = Capture(), err = Capture()
        var variables = environment
        if let token { variables["TOLLGATE_ADMIN_TOKEN"] = token }
        for (key, value) in extra { variables[key] = value }
        let environment = CLIEnvironment(
            variables: variables,
            standardOutput: { out.append($0) },
            standardError: { err.append($0) },
            readStandardInput: { Data(stdin.utf8) },
            readSecretFromTerminal: { _ in terminalInput },
            standardOutputIsTerminal: stdoutIsTerminal,
            standardInputIsTerminal: terminalInput != nil)
        let code = await TollgateRunner.run(arguments, environment: environment)
        return CLIResult(arguments: arguments, code: code, stdout: out.text, stderr: err.text)
    }

    /// Runs and expects exit code 0.
    @discardableResult
    func ok(_ arguments: [String], token: String? = nil, stdin: String = "", sourceLocation: SourceLocation = #_sourceLocation) async -> CLIResult {
        let result = await run(arguments, token: token, stdin: stdin)
        #expect(result.code == 0, "\(result.summary)", sourceLocation: sourceLocation)
        return result
    }
}

/// A live admin server (real HTTP on a free port) on a fresh migrated database, with a platform token,
/// a private HOME for config files and a CLI pointed at it.
struct LiveAdmin: Sendable {
    let url: String
    let platformToken: String
    let database: Database
    let databaseURL: String
    let home: URL
    let cli: CLI

    static func run(_ body: @escaping @Sendable (LiveAdmin) async throws -> Void) async throws {
        let testDatabase = try await TestPostgres.shared.makeDatabase(template: try await TestPostgres.shared.migratedTemplate())
        let logger = {
            var logger = Logger(label: "tollgate-cli-test")
            logger.logLevel = .warning
            return logger
        }()
        let postgres = PostgresClient(configuration: testDatabase.configuration, backgroundLogger: logger)
        let app = try buildApplication(
            configuration: AdminConfiguration(host: "127.0.0.1", port: 0, databaseURL: testDatabase.url, migrateOnStart: false),
            dependencies: AdminDependencies(client: postgres, keyring: TestSecrets.keyring, hasher: TestSecrets.hasher,
                                            migrations: try Migration.bundled()),
            logger: logger)
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("tgcli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: home) }
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let database = Database(client: postgres, logger: logger)
            let token = try await insertToken(role: .platformAdmin, tenantID: nil, database: database)
            let url = "http://127.0.0.1:\(port)"
            let cli = CLI(environment: ["HOME": home.path, "TOLLGATE_ADMIN_URL": url, "TERM": "xterm"])
            try await body(LiveAdmin(url: url, platformToken: token, database: database, databaseURL: testDatabase.url,
                                     home: home, cli: cli))
        }
    }

    /// Mints a token straight in the database.
    static func insertToken(role: AdminRole, tenantID: UUID?, database: Database) async throws -> String {
        let token = SecretToken.generate(.adminToken)
        _ = try await database.transaction { db in
            try await AdminTokenRepository(logger: database.logger).insert(
                AdminTokenRecord(id: UUID(), tenantID: tenantID, role: role, name: "test \(role.rawValue)",
                                 displayPrefix: token.displayPrefix, expiresAt: nil, createdBy: nil),
                hash: TestSecrets.hasher.hash(token.value), on: db)
        }
        return token.value
    }

    func token(_ role: AdminRole, tenant: String) async throws -> String {
        try await Self.insertToken(role: role, tenantID: UUID(uuidString: tenant)!, database: database)
    }

    /// Runs a command as the platform admin.
    @discardableResult
    func run(_ arguments: [String], stdin: String = "") async -> CLIResult {
        await cli.run(arguments, token: platformToken, stdin: stdin)
    }

    @discardableResult
    func ok(_ arguments: [String], token: String? = nil, stdin: String = "",
            sourceLocation: SourceLocation = #_sourceLocation) async -> CLIResult {
        await cli.ok(arguments, token: token ?? platformToken, stdin: stdin, sourceLocation: sourceLocation)
    }

    /// Creates a tenant through the CLI and returns its id.
    func makeTenant(_ slug: String = "t-\(UUID().uuidString.prefix(8).lowercased())", currency: String = "EUR") async throws -> String {
        let created = await ok(["tenants", "create", slug, "--currency", currency, "-o", "json"])
        return try #require(try created.json()["id"] as? String)
    }
}

/// Occurrences of `needle` in `text`.
func occurrences(of needle: String, in text: String) -> Int {
    text.components(separatedBy: needle).count - 1
}
