import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import PostgresNIO
import Prometheus
import ServiceLifecycle
import TollgateDomain
import TollgateStorage

/// What the proxy needs besides its configuration; the executable builds these from the
/// environment, tests around a throwaway database and the mock Mistral server.
public struct ProxyDependencies: Sendable {
    public var client: PostgresClient
    public var keyring: MasterKeyring
    public var hasher: SecretHasher
    public var upstream: UpstreamClients
    public var metrics: PrometheusCollectorRegistry?

    public init(client: PostgresClient, keyring: MasterKeyring, hasher: SecretHasher, upstream: UpstreamClients,
                metrics: PrometheusCollectorRegistry? = nil) {
        self.client = client; self.keyring = keyring; self.hasher = hasher; self.upstream = upstream; self.metrics = metrics
    }

    /// The HTTP clients the proxy forwards with (one per event loop): pooled, no redirects, bounded
    /// connect and read times. The read timeout is only a backstop: the forwarder enforces the
    /// first-byte timeout until the response head arrives and the idle timeout between body chunks.
    public static func makeUpstreamClients(_ configuration: ProxyConfiguration) -> UpstreamClients {
        var http = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .nanoseconds(configuration.connectTimeout.nanoseconds),
                           read: .nanoseconds(max(configuration.firstByteTimeout, configuration.idleChunkTimeout).nanoseconds)))
        http.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 512
        // No client spans: without a tracer bootstrapped they only cost a second URL parse.
        http.tracing.tracer = nil
        return UpstreamClients(configuration: http)
    }
}

/// The request context of the data plane: Hummingbird's core storage plus the event loop of the
/// client's connection, so the upstream call can stay on that loop (`UpstreamClients`).
public struct ProxyRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channelLoop: any EventLoop

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channelLoop = source.channel.eventLoop
    }
}

/// Builds the data plane server, used by `tollgate-proxy` and by the tests alike.
public func buildProxyApplication(
    configuration: ProxyConfiguration, dependencies: ProxyDependencies, logger: Logger
) throws -> some ApplicationProtocol {
    let database = Database(client: dependencies.client, logger: logger)
    let directory = KeyDirectory(logger: logger)
    let keys = KeyCache(ttl: configuration.keyCacheTTL, negativeLimit: configuration.negativeCacheSize)
    let vault = CredentialVault(keyring: dependencies.keyring, database: database, directory: directory)
    let prices = PriceCatalog(database: database, directory: directory)
    let journal = try SettlementJournal(directory: configuration.journalDirectory, name: configuration.proxyID)
    let settlements = SettlementQueue(database: database, journal: journal, logger: logger)
    let admissionStore = AdmissionStore(logger: logger)
    let exactAdmission = PostgresAdmissionGate(database: database, store: admissionStore, pendingSettlements: settlements,
                                               pendingSettlementWait: configuration.pendingSettlementWait)
    let tickets = configuration.admissionTickets
        ? TicketedAdmissionGate(exact: exactAdmission, database: database, store: admissionStore, settlements: settlements,
                                proxyID: configuration.proxyID, holdTTLSeconds: configuration.holdTTLSeconds,
                                policy: .init(idleRelease: configuration.admissionTicketIdleRelease), logger: logger)
        : nil
    let pipeline = ProxyPipeline(
        configuration: configuration,
        authenticator: Authenticator(hasher: dependencies.hasher, cache: keys, database: database, directory: directory),
        planner: HoldPlanner(configuration: configuration, prices: prices),
        admission: tickets ?? exactAdmission,
        vault: vault,
        forwarder: Forwarder(clients: dependencies.upstream, maxAttempts: configuration.maxAttempts,
                             totalTimeout: configuration.totalTimeout, firstByteTimeout: configuration.firstByteTimeout,
                             idleTimeout: configuration.idleChunkTimeout, logger: logger),
        settlements: settlements,
        logger: logger)

    let router = Router(context: ProxyRequestContext.self)
    // No Hummingbird MetricsMiddleware here: it wraps every response body in a closure, which
    // sends the head and the body in two writes (two syscalls, two segments for the client to
    // wake up for) instead of one batched write. The pipeline records its own request metrics.
    router.get("healthz") { _, _ in Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\"}"))) }
    router.get("readyz") { _, _ in
        let up = await database.ping()
        return Response(status: up ? .ok : .serviceUnavailable,
                        body: .init(byteBuffer: ByteBuffer(string: up ? "{\"status\":\"ok\"}" : "{\"status\":\"unavailable\"}")))
    }
    if let registry = dependencies.metrics {
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
    }
    // Every other path is Mistral's API; the pipeline routes and refuses what it does not know.
    // A body that misses the body timeout fails the pipeline's body read; the client gets a 408.
    let bodyTimeout = configuration.bodyTimeout
    let handler: @Sendable (Request, ProxyRequestContext) async throws -> Response = { request, context in
        let watch = BodyTimeoutWatch()
        var request = request
        request.body = watch.watching(request.body)
        let response = await pipeline.handle(request, loop: context.channelLoop)
        guard watch.timedOut else { return response }
        return BodyTimeoutWatch.response(requestID: response.headers[.xRequestID] ?? UUID.random().apiString, limit: bodyTimeout)
    }
    for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
        router.on("/v1/**", method: method, use: handler)
    }

    return Application(
        router: router,
        server: GuardedHTTP1Channel.builder(
            configuration: .init(idleTimeout: .seconds(Int64(configuration.idleTimeoutSeconds))),
            timeouts: ClientTimeouts(head: configuration.headerTimeout, body: configuration.bodyTimeout)),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "tollgate-proxy"),
        // Shut down in reverse order: the tickets give their unused holds back before the settlement
        // queue's final flush posts them.
        services: [
            dependencies.client,
            settlements,
            ChangeListener(client: dependencies.client, keys: keys, vault: vault, prices: prices, tickets: tickets, logger: logger),
            HoldReaper(database: database, interval: configuration.reaperInterval, logger: logger),
        ] + (tickets.map { [$0] } ?? []),
        logger: logger)
}
