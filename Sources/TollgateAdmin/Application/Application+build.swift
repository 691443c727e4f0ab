import Foundation
import Hummingbird
import Logging
import OpenAPIHummingbird
import PostgresNIO
import Prometheus
import TollgateAdminAPI
import TollgateDomain
import TollgateStorage

/// What the admin application needs besides its configuration. The executable builds these from
/// the environment; tests build them around a throwaway database.
public struct AdminDependencies: Sendable {
    public var client: PostgresClient
    public var keyring: MasterKeyring
    public var hasher: SecretHasher
    public var migrations: [Migration]
    public var metrics: PrometheusCollectorRegistry?

    public init(client: PostgresClient, keyring: MasterKeyring, hasher: SecretHasher, migrations: [Migration],
                metrics: PrometheusCollectorRegistry? = nil) {
        self.client = client; self.keyring = keyring; self.hasher = hasher
        self.migrations = migrations; self.metrics = metrics
    }
}

/// Builds the admin API server, used by `tollgate-admin` and by the tests alike.
public func buildApplication(
    configuration: AdminConfiguration, dependencies: AdminDependencies, logger: Logger
) throws -> some ApplicationProtocol {
    let database = Database(client: dependencies.client, logger: logger)
    let router = Router()
    router.add(middleware: RequestIDMiddleware())
    if dependencies.metrics != nil { router.add(middleware: MetricsMiddleware()) }
    router.add(middleware: BodyLimitMiddleware(maxBytes: configuration.maxBodyBytes))

    let spec = try loadSpecification()
    router.get("openapi.yaml") { _, _ in
        Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(bytes: spec)))
    }
    if let registry = dependencies.metrics {
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
    }

    let api = AdminAPI(
        database: database, keyring: dependencies.keyring, hasher: dependencies.hasher,
        upstreamPolicy: UpstreamURLPolicy(allowInsecureAndPrivate: configuration.allowPrivateUpstreams),
        migrations: dependencies.migrations, logger: logger)
    try api.registerHandlers(
        on: router, serverURL: URL(string: "/")!,
        middlewares: [
            ProblemMiddleware(logger: logger),
            AuthenticationMiddleware(database: database, hasher: dependencies.hasher, tokens: AdminTokenRepository(logger: logger)),
        ])

    var app = Application(
        router: router,
        server: .http1(configuration: .init(idleTimeout: .seconds(Int64(configuration.idleTimeoutSeconds)))),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "tollgate-admin"),
        services: [dependencies.client],
        logger: logger)
    let runner = MigrationRunner(client: dependencies.client, migrations: dependencies.migrations, logger: logger)
    let migrateOnStart = configuration.migrateOnStart
    app.beforeServerStarts {
        if migrateOnStart {
            let applied = try await runner.migrate()
            logger.info("migrations current", metadata: ["applied_now": "\(applied.count)"])
            try await database.read { try await UsageRepository(logger: logger).ensurePartitions(monthsAhead: 2, on: $0) }
        }
        try await KeyringCheck(database: database, keyring: dependencies.keyring).requireEveryVersionInUse()
    }
    return app
}

/// `admin/openapi.yaml`, embedded at build time.
func loadSpecification() throws -> [UInt8] {
    guard let spec = EmbeddedSpecification.files.first else {
        throw ConfigurationError("admin/openapi.yaml was not embedded in this build")
    }
    return Array(spec.contents.utf8)
}
