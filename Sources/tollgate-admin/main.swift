import Foundation
import Hummingbird
import Logging
import Metrics
import PostgresNIO
import Prometheus
import TollgateAdmin
import TollgateDomain
import TollgateLogging
import TollgateRuntime
import TollgateStorage

// tollgate-admin: the admin API server. Configuration comes from the environment (README).
// Missing or invalid secrets stop the process at start with a message that names the setting,
// never its value.

JSONLogHandler.bootstrap(environment: ProcessInfo.processInfo.environment)
let logger = Logger(label: "tollgate-admin")
OpenFileLimit.raiseForServer(logger: logger)
let environment = ProcessInfo.processInfo.environment

do {
    let configuration = try AdminConfiguration.load(environment: environment)
    let keyring = try MasterKeyring.load(environment: environment)
    let hasher = try SecretHasher.load(environment: environment)
    let migrations = try Migration.bundled(environment: environment)
    var databaseConfiguration = try DatabaseURL.configuration(from: configuration.databaseURL)
    databaseConfiguration.options.maximumConnections = configuration.databasePoolSize
    let registry = PrometheusCollectorRegistry()
    MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    let client = PostgresClient(configuration: databaseConfiguration, backgroundLogger: logger)
    logger.info("keyring loaded", metadata: ["keyring": "\(keyring.status)"])
    let app = try buildApplication(
        configuration: configuration,
        dependencies: AdminDependencies(client: client, keyring: keyring, hasher: hasher, migrations: migrations, metrics: registry),
        logger: logger)
    try await app.runService()
} catch {
    logger.critical("tollgate-admin cannot start: \(error)")
    exit(1)
}
