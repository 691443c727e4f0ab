import AsyncHTTPClient
import Foundation
import MockMistral
import NIOCore
import Testing
import TollgateDomain
import TollgateStorage

@Suite("Budgets and limits under concurrency")
struct BudgetConcurrencyTests {
    /// 200 concurrent requests against a key whose budget fits far fewer: the posted spend never
    /// exceeds the budget, every request the mock received is settled exactly once, nothing stays reserved.
    @Test func concurrentRequestsNeverOverspend() async throws {
        let payload = Data(#"{"model":"mistral-small-latest","max_tokens":8,"messages":[{"role":"user","content":"Count to three."}]}"#.utf8)
        let budgetNanos: Int64 = 1_000_000  // 0.001 USD: a few dozen of these requests
        try await ProxyHarness.run(KeyOptions(budget: Budget(limit: Money(nanos: budgetNanos), period: .monthly)), poolSize: 20) { h in
            let statuses = try await h.fire(count: 200, body: payload)
            let admitted = statuses.filter { $0 == 200 }.count
            #expect(admitted > 0)
            #expect(statuses.contains(402), "the budget must have refused some of the 200 requests")
            print("budget test: \(admitted) of 200 admitted")
            #expect(statuses.allSatisfy { $0 == 200 || $0 == 402 }, "\(Set(statuses))")
            let rows = try await h.settled(expectedRows: admitted)
            #expect(rows.count == admitted)
            #expect(h.mock.requestLog.entries(path: "/v1/chat/completions").count == admitted)
            let window = try await h.budgetWindow(owner: h.seed.keyID)
            #expect(window.spent <= budgetNanos)
            #expect(window.reserved == 0)
            #expect(window.spent == rows.reduce(0) { $0 + $1.costNanos })
            // Each request costs the same, so the admitted count is bounded by the budget too.
            let perRequest = try #require(rows.first?.costNanos)
            #expect(Int64(admitted) * perRequest <= budgetNanos)
        }
    }

    @Test func concurrencyCapAdmitsAtMostCAtOnce() async throws {
        try await ProxyHarness.run(KeyOptions(limits: RateLimits(maxConcurrent: 2))) { h in
            h.mock.updateConfiguration { $0.latency = .seconds(2) }  // all six overlap even on a slow machine
            let statuses = try await h.fire(count: 6, body: try JSONSerialization.data(withJSONObject: chatBody))
            #expect(statuses.filter { $0 == 200 }.count == 2, "\(statuses)")
            #expect(statuses.filter { $0 == 429 }.count == 4, "\(statuses)")
            _ = try await h.settled(expectedRows: 2)
        }
    }

    @Test func requestsPerMinuteLimitWithRetryAfter() async throws {
        try await ProxyHarness.run(KeyOptions(limits: RateLimits(requestsPerMinute: 3))) { h in
            for _ in 0..<3 { #expect(try await h.post("/v1/chat/completions", chatBody).status == .ok) }
            let limited = try await h.post("/v1/chat/completions", chatBody)
            #expect(limited.status == .tooManyRequests)
            #expect(Int(limited.headers[.retryAfter] ?? "") ?? 0 >= 1)
            #expect(h.mock.requestLog.count == 3)
        }
    }

    @Test func exhaustedBudgetNamesWhichBudgetAndWhenItResets() async throws {
        try await ProxyHarness.run(KeyOptions(tenantBudget: Budget(limit: Money(nanos: 10), period: .daily))) { h in
            let reply = try await h.post("/v1/chat/completions", chatBody)
            #expect(reply.status.code == 402)
            #expect(reply.json["code"] as? String == "tenant_budget_exceeded")
            #expect((reply.json["message"] as? String)?.contains("resets at") == true)
            #expect(h.mock.requestLog.count == 0)
        }
    }

    /// A client that waits for each response before sending the next never trips a concurrency cap
    /// of 1 or a tokens/min limit that fits its requests, although settlement (which frees the
    /// slot and gives back unused tokens) is posted after the response.
    @Test func sequentialRequestsFitTheirLimits() async throws {
        // Each request holds 100 completion tokens plus its prompt bound, so 1,500 tokens/min fits
        // about a dozen holds: 30 requests fit only if each one's unused tokens come back.
        // A generous wait: the parallel suite can starve this process's threads for seconds.
        try await ProxyHarness.run(KeyOptions(limits: RateLimits(tokensPerMinute: 1_500, maxConcurrent: 1)),
                                   configure: { $0.pendingSettlementWait = .seconds(20) }) { h in
            let body: [String: Any] = ["model": "mistral-small-latest", "max_tokens": 100,
                                       "messages": [["role": "user", "content": "hi"]]]
            var statuses: [Int] = []
            var refusals: [String] = []
            for _ in 0..<30 {
                let reply = try await h.post("/v1/chat/completions", body)
                statuses.append(Int(reply.status.code))
                if reply.status != .ok { refusals.append(reply.body) }
            }
            #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses) \(refusals)")
            _ = try await h.settled(expectedRows: 30)
        }
    }
}
