import Foundation
import Hummingbird
import Logging
import Metrics
import NIOPosix
import PostgresNIO
import Prometheus
import TollgateDomain
import TollgateLogging
import TollgateRuntime
import TollgateProxy
import TollgateStorage

// tollgate-proxy: the data plane. Applications call it instead of https://api.mistral.ai.
// Configuration comes from the environment (README, "Configuration").

// Async code runs on NIO's event-loop threads instead of a separate Dispatch pool: every request
// crosses between the server, Postgres and upstream connections several times, and each crossing
// between pools is a thread wake-up (measured: about half the proxy's CPU per request at low load).
// Must run first, on the main thread. TOLLGATE_CONCURRENCY_ON_EVENT_LOOPS=false turns it off.
// TOLLGATE_EVENT_LOOPS sets how many event-loop threads serve everything (default: one per core).
if let text = ProcessInfo.processInfo.environment["TOLLGATE_EVENT_LOOPS"] {
    guard let loops = Int(text), (1...1024).contains(loops) else {
        FileHandle.standardError.write(Data("tollgate-proxy cannot start: TOLLGATE_EVENT_LOOPS must be a whole number from 1 to 1024, got \"\(text)\"\n".utf8))
        exit(1)
    }
    NIOSingletons.groupLoopCountSuggestion = loops
}
if ProcessInfo.processInfo.environment["TOLLGATE_CONCURRENCY_ON_EVENT_LOOPS"] != "false" {
    NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
}

JSONLogHandler.bootstrap(environment: ProcessInfo.processInfo.environment)
let logger = Logger(label: "tollgate-proxy")
OpenFileLimit.raiseForServer(logger: logger)
let environment = ProcessInfo.processInfo.environment

do {
    let configuration = try ProxyConfiguration.load(environment: environment)
    let keyring = try MasterKeyring.load(environment: environment)
    let hasher = try SecretHasher.load(environment: environment)
    var databaseConfiguration = try DatabaseURL.configuration(from: configuration.databaseURL)
    databaseConfiguration.options.maximumConnections = configuration.databasePoolSize
    let registry = PrometheusCollectorRegistry()
    var metricsFactory = PrometheusMetricsFactory(registry: registry)
    metricsFactory.defaultDurationHistogramBuckets = ProxyMetricBuckets.durations
    metricsFactory.durationHistogramBuckets = ProxyMetricBuckets.byLabel
    MetricsSystem.bootstrap(metricsFactory)
    let client = PostgresClient(configuration: databaseConfiguration, backgroundLogger: logger)
    let upstream = ProxyDependencies.makeUpstreamClients(configuration)
    let app = try buildProxyApplication(
        configuration: configuration,
        dependencies: ProxyDependencies(client: client, keyring: keyring, hasher: hasher, upstream: upstream, metrics: registry),
        logger: logger)
    try await app.runService()
    try await upstream.shutdown()
} catch {
    logger.critical("tollgate-proxy cannot start: \(error)")
    exit(1)
}
