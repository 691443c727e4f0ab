import Foundation

/// Settings of `tollgate-proxy`, from the environment (see README, "Configuration").
public struct ProxyConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    public var port: Int = 8080
    public var databaseURL: String
    /// Largest accepted request body (`TOLLGATE_PROXY_MAX_BODY_BYTES`).
    public var maxBodyBytes: Int = 10 * 1024 * 1024
    /// Largest non-streamed upstream response the gateway buffers to read `usage`.
    public var maxResponseBytes: Int = 64 * 1024 * 1024
    /// `max_tokens` set when neither the client nor the key gives one (`TOLLGATE_DEFAULT_MAX_TOKENS`).
    public var defaultMaxTokens: Int = 4096
    /// Prompt tokens held for a conversation's stored history on append and restart
    /// (`TOLLGATE_CONVERSATION_HISTORY_TOKENS`); more is posted as overshoot.
    public var conversationHistoryTokens: Int = 32_768
    /// Pages held for an OCR request that does not list its `pages` (`TOLLGATE_OCR_DEFAULT_PAGES`).
    public var ocrDefaultPages: Int = 100
    /// Refuse models without a price (`TOLLGATE_ALLOW_UNPRICED_MODELS=true` forwards them at cost 0).
    public var allowUnpricedModels: Bool = false
    /// Key cache freshness: a safety net behind LISTEN/NOTIFY (`TOLLGATE_KEY_CACHE_TTL_SECONDS`).
    public var keyCacheTTL: Duration = .seconds(30)
    public var negativeCacheSize: Int = 10_000
    public var connectTimeout: Duration = .seconds(5)
    public var firstByteTimeout: Duration = .seconds(120)
    public var idleChunkTimeout: Duration = .seconds(60)
    public var totalTimeout: Duration = .seconds(600)
    /// Upstream attempts per request (first try + retries), across the key's credentials.
    public var maxAttempts: Int = 3
    /// Where settlements are journaled (fsync'd) until Postgres has them (`TOLLGATE_JOURNAL_DIR`).
    public var journalDirectory: String = ".tollgate/journal"
    /// Identifies this replica in holds (`TOLLGATE_PROXY_ID`, default host name + pid).
    public var proxyID: String = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    public var idleTimeoutSeconds: Int = 75
    /// A request head must arrive within this of its first byte (`TOLLGATE_PROXY_HEADER_TIMEOUT_SECONDS`).
    public var headerTimeout: Duration = .seconds(10)
    /// A request body must arrive within this of its head (`TOLLGATE_PROXY_BODY_TIMEOUT_SECONDS`):
    /// 60 s lets the largest default body (10 MiB) through at about 1.4 Mbit/s.
    public var bodyTimeout: Duration = .seconds(60)
    /// How long a refusal that a pending settlement could relax waits for this replica's
    /// settlements to post before it is final (`TOLLGATE_PENDING_SETTLEMENT_WAIT_MS`).
    public var pendingSettlementWait: Duration = .seconds(1)
    /// How often this replica looks for holds whose proxy died (`TOLLGATE_REAPER_INTERVAL_SECONDS`).
    public var reaperInterval: Duration = .seconds(10)
    /// How long after the total timeout a hold counts as abandoned (`TOLLGATE_HOLD_GRACE_SECONDS`).
    public var holdGrace: Duration = .seconds(60)
    public var databasePoolSize: Int = 20
    /// Admit busy keys' requests on admission tickets, holds taken in advance, instead of one
    /// database round trip each (`TOLLGATE_ADMISSION_TICKETS`, default on; see TicketedAdmissionGate).
    public var admissionTickets: Bool = true
    /// A key unused this long gives its unused tickets back (`TOLLGATE_ADMISSION_TICKET_IDLE_MS`).
    public var admissionTicketIdleRelease: Duration = .seconds(1)

    public init(databaseURL: String) { self.databaseURL = databaseURL }

    public static func load(environment env: [String: String]) throws -> ProxyConfiguration {
        guard let url = env["DATABASE_URL"], !url.isEmpty else {
            throw ProxyConfigurationError("DATABASE_URL is not set (postgres://user:password@host:5432/database)")
        }
        var c = ProxyConfiguration(databaseURL: url)
        func int(_ name: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let text = env[name], !text.isEmpty else { return nil }
            guard let value = Int(text), range.contains(value) else {
                throw ProxyConfigurationError("\(name) must be an integer between \(range.lowerBound) and \(range.upperBound)")
            }
            return value
        }
        if let host = env["TOLLGATE_PROXY_HOST"], !host.isEmpty { c.host = host }
        if let v = try int("TOLLGATE_PROXY_PORT", 0...65535) { c.port = v }
        if let v = try int("TOLLGATE_PROXY_MAX_BODY_BYTES", 1024...(256 * 1024 * 1024)) { c.maxBodyBytes = v }
        if let v = try int("TOLLGATE_DEFAULT_MAX_TOKENS", 1...10_000_000) { c.defaultMaxTokens = v }
        if let v = try int("TOLLGATE_KEY_CACHE_TTL_SECONDS", 1...3600) { c.keyCacheTTL = .seconds(v) }
        if let v = try int("TOLLGATE_OCR_DEFAULT_PAGES", 1...100_000) { c.ocrDefaultPages = v }
        if let v = try int("TOLLGATE_CONVERSATION_HISTORY_TOKENS", 0...10_000_000) { c.conversationHistoryTokens = v }
        if let v = try int("TOLLGATE_UPSTREAM_CONNECT_TIMEOUT_SECONDS", 1...600) { c.connectTimeout = .seconds(v) }
        if let v = try int("TOLLGATE_UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS", 1...3600) { c.firstByteTimeout = .seconds(v) }
        if let v = try int("TOLLGATE_UPSTREAM_IDLE_TIMEOUT_SECONDS", 1...3600) { c.idleChunkTimeout = .seconds(v) }
        if let v = try int("TOLLGATE_UPSTREAM_TOTAL_TIMEOUT_SECONDS", 1...7200) { c.totalTimeout = .seconds(v) }
        if let v = try int("TOLLGATE_UPSTREAM_MAX_ATTEMPTS", 1...10) { c.maxAttempts = v }
        if let v = try int("TOLLGATE_PROXY_IDLE_TIMEOUT_SECONDS", 1...3600) { c.idleTimeoutSeconds = v }
        if let v = try int("TOLLGATE_PROXY_HEADER_TIMEOUT_SECONDS", 1...3600) { c.headerTimeout = .seconds(v) }
        if let v = try int("TOLLGATE_PROXY_BODY_TIMEOUT_SECONDS", 1...3600) { c.bodyTimeout = .seconds(v) }
        if let v = try int("TOLLGATE_PENDING_SETTLEMENT_WAIT_MS", 0...60_000) { c.pendingSettlementWait = .milliseconds(v) }
        if let v = try int("TOLLGATE_DATABASE_POOL_SIZE", 1...500) { c.databasePoolSize = v }
        if let v = try int("TOLLGATE_REAPER_INTERVAL_SECONDS", 1...3600) { c.reaperInterval = .seconds(v) }
        if let v = try int("TOLLGATE_HOLD_GRACE_SECONDS", 1...3600) { c.holdGrace = .seconds(v) }
        if let dir = env["TOLLGATE_JOURNAL_DIR"], !dir.isEmpty { c.journalDirectory = dir }
        if let id = env["TOLLGATE_PROXY_ID"], !id.isEmpty { c.proxyID = id }
        if let flag = env["TOLLGATE_ADMISSION_TICKETS"]?.lowercased(), !flag.isEmpty {
            guard let on = ["1": true, "true": true, "yes": true, "on": true, "0": false, "false": false, "no": false, "off": false][flag] else {
                throw ProxyConfigurationError("TOLLGATE_ADMISSION_TICKETS must be true or false")
            }
            c.admissionTickets = on
        }
        if let v = try int("TOLLGATE_ADMISSION_TICKET_IDLE_MS", 50...60_000) { c.admissionTicketIdleRelease = .milliseconds(v) }
        if let flag = env["TOLLGATE_ALLOW_UNPRICED_MODELS"]?.lowercased() { c.allowUnpricedModels = ["1", "true", "yes"].contains(flag) }
        return c
    }

    /// Holds of requests still running when their proxy died are reaped after this. No request of
    /// a live proxy lasts longer than the total timeout, so the reaper never races a live request.
    var holdTTLSeconds: Int { Int(totalTimeout.components.seconds + holdGrace.components.seconds) }
}

public struct ProxyConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
