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
        try await ProxyHarness.run(KeyOptions(budget: Budget(limit: Money(nanos: budgetNanos), period: .monthly))) { h in
            let port = try #require(h.client.port)
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/chat/completions")
                        request.method = .POST
                        request.headers.add(name: "Authorization", value: "Bearer \(h.seed.secret)")
                        request.headers.add(name: "Content-Type", value: "application/json")
                        request.body = .bytes(ByteBuffer(data: payload))
                        let response = try await http.execute(request, timeout: .seconds(30))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        return Int(response.status.code)
                    }
                }
                var all: [Int] = []
                for try await status in group { all.append(status) }
                return all
            }
            try await http.shutdown()
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
            h.mock.updateConfiguration { $0.latency = .milliseconds(300) }
            let port = try #require(h.client.port)
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            let payload = try JSONSerialization.data(withJSONObject: chatBody)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/chat/completions")
                        request.method = .POST
                        request.headers.add(name: "Authorization", value: "Bearer \(h.seed.secret)")
                        request.headers.add(name: "Content-Type", value: "application/json")
                        request.body = .bytes(ByteBuffer(data: payload))
                        let response = try await http.execute(request, timeout: .seconds(30))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        return Int(response.status.code)
                    }
                }
                var all: [Int] = []
                for try await status in group { all.append(status) }
                return all
            }
            try await http.shutdown()
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
}
