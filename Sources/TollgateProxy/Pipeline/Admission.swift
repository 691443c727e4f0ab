import Foundation
import TollgateDomain
import TollgateStorage

/// Stage 3: limits and the budget hold, in one atomic database round trip, durable before anything
/// is forwarded. Behind a protocol so the strategy can change (e.g. coalescing concurrent holds of
/// one hot key into one statement) without touching the other stages.
protocol AdmissionGate: Sendable {
    func admit(_ request: ReservationRequest) async throws -> ReservationOutcome
}

struct PostgresAdmissionGate: AdmissionGate {
    let database: Database
    let store: AdmissionStore

    func admit(_ request: ReservationRequest) async throws -> ReservationOutcome {
        do {
            return try await withDeadline(.seconds(3)) { [database, store] in
                try await database.read { try await store.reserve(request, on: $0) }
            }
        } catch {
            database.logger.error("reservation failed", metadata: [
                "request_id": "\(request.requestID)", "error": "\(String(reflecting: error))"])
            // Fail closed: nothing is forwarded that could not be reserved.
            throw ProxyError.unavailable("The gateway cannot reach its database to reserve budget; retry shortly.")
        }
    }
}

extension ReservationOutcome {
    /// The client-facing refusal for everything but `.admitted`.
    func refusal(currency: Currency) -> ProxyError? {
        switch self {
        case .admitted:
            return nil
        case .keyInactive:
            return .forbidden("key_revoked", "This API key has been revoked.")
        case .keyExpired:
            return .forbidden("key_expired", "This API key has expired.")
        case .tenantSuspended:
            return .forbidden("tenant_suspended", "The team that owns this API key is suspended.")
        case .rateLimited(let scope, let retry, _):
            return .rateLimited("Requests-per-minute limit of the \(scope.noun) reached.", retryAfterMilliseconds: retry)
        case .tokensLimited(let scope, let retry):
            return .rateLimited("Tokens-per-minute limit of the \(scope.noun) reached.", retryAfterMilliseconds: retry,
                                code: "tokens_rate_limited")
        case .requestTooLarge(let scope):
            return .badRequest("request_exceeds_token_limit",
                               "This request could use more tokens than the \(scope.noun)'s tokens-per-minute limit allows; lower max_tokens.")
        case .concurrencyLimited(let scope):
            return .rateLimited("Too many concurrent requests for the \(scope.noun).", retryAfterMilliseconds: 1000,
                                code: "concurrency_limited")
        case .budgetExhausted(let scope, let resetsAt):
            let reset = resetsAt.map { " It resets at \(ISO8601DateFormatter().string(from: $0))." } ?? " It does not reset (lifetime budget)."
            return ProxyError(status: .init(code: 402, reasonPhrase: "Payment Required"), type: "budget_exceeded", code: "\(scope.rawValue)_budget_exceeded",
                              message: "The \(scope.noun)'s budget has no room for this request.\(reset)")
        }
    }
}

extension LimitScope {
    var noun: String { self == .key ? "API key" : "team" }
}
