import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO
import TollgateAdmin
import TollgateDomain
import TollgateStorage
import TollgateTestSupport

/// Canary values: tests assert these never show up where they must not.
enum Canary {
    static let mistralSecret = "sk-canary-\(UUID().uuidString.replacingOccurrences(of: "-", with: ""))"
}

/// The migrated template every admin test clones (migrating once per process keeps tests fast).
func migratedTemplate() async throws -> String {
    try await TestPostgres.shared.migratedTemplate()
}

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

func testKeyring(versions: [UInt32] = [1], primary: UInt32? = nil, seed: UInt8 = 7) throws -> MasterKeyring {
    var keys: [UInt32: SymmetricKey] = [:]
    for version in versions {
        keys[version] = SymmetricKey(data: SHA256.hash(data: Data([seed, UInt8(truncatingIfNeeded: version)])))
    }
    return try MasterKeyring(keys: keys, primary: primary ?? versions.max()!)
}

let testHasher = try! SecretHasher(pepper: SymmetricKey(data: SHA256.hash(data: Data("test pepper".utf8))))

/// A running admin app on a fresh migrated database, with a platform-admin token.
struct AdminHarness: Sendable {
    let client: any TestClientProtocol
    let database: Database
    let platformToken: String
    let logs: LogCapture
    let keyring: MasterKeyring

    /// Runs `body` against a fresh app. `keyring` defaults to a one-version test keyring.
    /// `database` lets several app instances (e.g. with different keyrings) share one database.
    @discardableResult
    static func run<T: Sendable>(keyring: MasterKeyring? = nil, maxBodyBytes: Int = 256 * 1024, database existing: TestDatabase? = nil,
                                 _ body: @escaping @Sendable (AdminHarness) async throws -> T) async throws -> T {
        let testDatabase: TestDatabase
        if let existing { testDatabase = existing } else {
            testDatabase = try await TestPostgres.shared.makeDatabase(template: try await migratedTemplate())
        }
        let logs = LogCapture()
        let logger = logs.logger()
        let postgres = PostgresClient(configuration: testDatabase.configuration, backgroundLogger: logger)
        let keyring = try keyring ?? testKeyring()
        let migrations = try Migration.load(from: repositoryRoot.appendingPathComponent("migrations"))
        let app = try buildApplication(
            configuration: AdminConfiguration(databaseURL: testDatabase.url, migrateOnStart: false, maxBodyBytes: maxBodyBytes),
            dependencies: AdminDependencies(client: postgres, keyring: keyring, hasher: testHasher, migrations: migrations,
                                            metrics: TestMetrics.registry),
            logger: logger)
        return try await app.test(.router) { client in
            let database = Database(client: postgres, logger: logger)
            let token = try await Self.insertToken(role: .platformAdmin, tenantID: nil, database: database)
            return try await body(AdminHarness(client: client, database: database, platformToken: token, logs: logs, keyring: keyring))
        }
    }

    /// Mints a token straight in the database (the API path is tested separately).
    static func insertToken(role: AdminRole, tenantID: UUID?, database: Database, expiresAt: Date? = nil) async throws -> String {
        try await insertTokenWithID(role: role, tenantID: tenantID, database: database, expiresAt: expiresAt).token
    }

    static func insertTokenWithID(role: AdminRole, tenantID: UUID?, database: Database,
                                  expiresAt: Date? = nil) async throws -> (id: UUID, token: String) {
        let token = SecretToken.generate(.adminToken)
        let record = try await database.transaction { db in
            try await AdminTokenRepository(logger: database.logger).insert(
                AdminTokenRecord(id: UUID(), tenantID: tenantID, role: role, name: "test \(role.rawValue)",
                                 displayPrefix: token.displayPrefix, expiresAt: expiresAt, createdBy: nil),
                hash: testHasher.hash(token.value), on: db)
        }
        return (record.id, token.value)
    }

    func token(_ role: AdminRole, tenant: UUID) async throws -> String {
        try await Self.insertToken(role: role, tenantID: tenant, database: database)
    }

    // MARK: HTTP helpers

    struct Reply: Sendable {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let body: String
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }
        var data: [[String: Any]] { json["data"] as? [[String: Any]] ?? [] }
        subscript(_ key: String) -> Any? { json[key] }
        func string(_ key: String) -> String? { json[key] as? String }
    }

    @discardableResult
    func call(_ method: HTTPRequest.Method, _ path: String, token: String?, json: Any? = nil, rawBody: String? = nil,
              headers extra: HTTPFields = [:]) async throws -> Reply {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        var buffer: ByteBuffer?
        if let json {
            buffer = ByteBuffer(data: try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]))
        } else if let rawBody {
            buffer = ByteBuffer(string: rawBody)
        }
        if buffer != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: path, method: method, headers: headers, body: buffer) { response in
            Reply(status: response.status, headers: response.headers, body: String(buffer: response.body))
        }
    }

    // MARK: Fixtures

    struct TenantFixture: Sendable {
        let id: String
        let admin: String
        let viewer: String
        let credentialID: String
        let keyID: String
        /// A tenant-viewer token nobody uses, for revoke tests.
        let spareTokenID: String
    }

    /// A tenant with an admin and a viewer token, a credential and a key.
    func makeTenant(_ slug: String = "t-\(UUID().uuidString.prefix(8).lowercased())") async throws -> TenantFixture {
        let tenant = try await call(.post, "/v1/tenants", token: platformToken,
                                    json: ["slug": slug, "name": "Tenant \(slug)", "currency": "EUR"])
        precondition(tenant.status == .created, "tenant create failed: \(tenant.body)")
        let id = tenant.string("id")!
        let uuid = UUID(uuidString: id)!
        let admin = try await token(.tenantAdmin, tenant: uuid)
        let viewer = try await token(.tenantViewer, tenant: uuid)
        let credential = try await call(.post, "/v1/tenants/\(id)/credentials", token: admin,
                                        json: ["name": "main", "secret": Canary.mistralSecret])
        precondition(credential.status == .created, "credential create failed: \(credential.body)")
        let key = try await call(.post, "/v1/tenants/\(id)/keys", token: admin, json: ["name": "app"])
        precondition(key.status == .created, "key create failed: \(key.body)")
        let keyID = (key["key"] as! [String: Any])["id"] as! String
        let spare = try await Self.insertTokenWithID(role: .tenantViewer, tenantID: uuid, database: database)
        return TenantFixture(id: id, admin: admin, viewer: viewer, credentialID: credential.string("id")!, keyID: keyID,
                             spareTokenID: spare.id.uuidString.lowercased())
    }
}
