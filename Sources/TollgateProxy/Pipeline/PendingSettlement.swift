import Foundation
import Logging
import TollgateDomain
import TollgateStorage

/// The settlement owed by one admitted request. Settles exactly once: the first call wins, and if
/// the request is dropped without settling (e.g. the response body was never written because the
/// client vanished first), it settles at the hold (worst case) on release, marked estimated.
final class PendingSettlement: Sendable {
    /// The hold's id: the request's own, or its ticket's.
    let requestID: UUID
    /// For a request admitted on a ticket: its own ledger details.
    let ledger: LedgerDetail?
    let tenantID: UUID
    let model: String
    let price: Price
    let worstCase: Usage
    /// For requests priced at a ceiling (agents): the price of the model the response names.
    private let repricing: (@Sendable (String) async -> Price?)?
    private let started: ContinuousClock.Instant
    private let queue: SettlementQueue
    private let logger: Logger
    private let done = Locked(false)

    init(requestID: UUID, ledger: LedgerDetail? = nil, tenantID: UUID, model: String, price: Price, worstCase: Usage,
         repricing: (@Sendable (String) async -> Price?)? = nil, started: ContinuousClock.Instant,
         queue: SettlementQueue, logger: Logger) {
        self.ledger = ledger
        self.repricing = repricing
        self.requestID = requestID
        self.tenantID = tenantID
        self.model = model
        self.price = price
        self.worstCase = worstCase
        self.started = started
        self.queue = queue
        self.logger = logger
    }

    var needsAnsweredModel: Bool { repricing != nil }

    func settle(usage: Usage, statusCode: Int, estimated: Bool, credentialID: UUID?, upstreamLatency: Duration?,
                answeredModel: String? = nil) async {
        guard claim() else { return }
        var price = self.price
        if let repricing, let answeredModel, let answered = await repricing(answeredModel) { price = answered }
        let cost = price.cost(of: usage)
        ProxyMetrics.usage(tenant: tenantID, model: model, promptTokens: usage.promptTokens,
                           completionTokens: usage.completionTokens, costNanos: cost.nanos)
        queue.submit(Settlement(
            requestID: requestID, cost: cost, usage: usage, statusCode: statusCode, estimated: estimated,
            credentialID: credentialID, upstreamLatencyMs: upstreamLatency?.milliseconds,
            totalLatencyMs: (ContinuousClock.now - started).milliseconds, ledger: ledger))
    }

    /// Charges the whole hold: used when the real usage cannot be known.
    func settleWorstCase(statusCode: Int, credentialID: UUID?, upstreamLatency: Duration?) async {
        await settle(usage: worstCase, statusCode: statusCode, estimated: true, credentialID: credentialID,
                     upstreamLatency: upstreamLatency)
    }

    private func claim() -> Bool {
        done.withLock { done in
            if done { return false }
            done = true
            return true
        }
    }

    deinit {
        guard claim() else { return }
        let settlement = Settlement(
            requestID: requestID, cost: price.cost(of: worstCase), usage: worstCase, statusCode: 499, estimated: true,
            credentialID: nil, upstreamLatencyMs: nil, totalLatencyMs: (ContinuousClock.now - started).milliseconds,
            ledger: ledger)
        logger.info("request dropped before settling; charging its hold", metadata: ["request_id": "\(requestID)"])
        queue.submit(settlement)
    }
}
