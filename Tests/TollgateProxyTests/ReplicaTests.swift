import AsyncHTTPClient
import Foundation
import MockMistral
import NIOCore
import Testing
import TollgateDomain
import TollgateStorage

/// Limits must hold jointly across replicas that share only the database.
@Suite("Three proxy replicas")
struct ReplicaTests {
    static func fire(_ h: ProxyHarness, count: Int, body: Data) async throws -> [Int] {
        let ports = h.clients.compactMap(\.port)
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = http.shutdown() as EventLoopFuture<Void> }
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<count {
                let port = ports[index % ports.count]
                group.addTask {
                    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/chat/completions")
                    request.method = .POST
                    request.headers.add(name: "Authorization", value: "Bearer \(h.seed.secret)")
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(data: body))
                    let response = try await http.execute(request, timeout: .seconds(30))
                    _ = try await response.body.collect(upTo: 1 << 20)
                    return Int(response.status.code)
                }
            }
            var all: [Int] = []
            for try await status in group { all.append(status) }
            return all
        }
    }

    static let body = Data(#"{"model":"mistral-small-latest","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#.utf8)

    @Test func budgetHoldsAcrossReplicas() async throws {
        let budget: Int64 = 400_000
        try await ProxyHarness.run(KeyOptions(budget: Budget(limit: Money(nanos: budget), period: .lifetime)), replicas: 3) { h in
            let statuses = try await Self.fire(h, count: 200, body: Self.body)
            let admitted = statuses.filter { $0 == 200 }.count
            #expect(statuses.contains(402))
            let rows = try await h.settled(expectedRows: admitted)
            #expect(rows.count == admitted)
            #expect(h.mock.requestLog.entries(path: "/v1/chat/completions").count == admitted)
            let window = try await h.budgetWindow(owner: h.seed.keyID)
            #expect(window.spent <= budget)
            #expect(window.reserved == 0)
        }
    }

    @Test func requestsPerMinuteIsEnforcedJointly() async throws {
        try await ProxyHarness.run(KeyOptions(limits: RateLimits(requestsPerMinute: 10)), replicas: 3) { h in
            let statuses = try await Self.fire(h, count: 30, body: Self.body)
            #expect(statuses.filter { $0 == 200 }.count == 10, "\(statuses)")
            #expect(statuses.filter { $0 == 429 }.count == 20)
        }
    }

    @Test func concurrencyCapIsJoint() async throws {
        try await ProxyHarness.run(KeyOptions(limits: RateLimits(maxConcurrent: 3)), replicas: 3) { h in
            h.mock.updateConfiguration { $0.latency = .milliseconds(400) }
            let statuses = try await Self.fire(h, count: 12, body: Self.body)
            #expect(statuses.filter { $0 == 200 }.count == 3, "\(statuses)")
        }
    }

    @Test func revokeIsRefusedByEveryReplicaWithinOneSecond() async throws {
        try await ProxyHarness.run(replicas: 3) { h in
            // Warm every replica's key cache.
            #expect(try await Self.fire(h, count: 3, body: Self.body).allSatisfy { $0 == 200 })
            try await h.database.transaction { db in
                _ = try await VirtualKeyRepository(logger: h.database.logger).revoke(tenantID: h.seed.tenantID, id: h.seed.keyID, on: db)
            }
            let revokedAt = ContinuousClock.now
            try await Task.sleep(for: .milliseconds(100))
            let after = try await Self.fire(h, count: 3, body: Self.body)
            #expect(ContinuousClock.now - revokedAt < .seconds(1))
            #expect(after.allSatisfy { $0 == 403 }, "\(after)")
            #expect(h.mock.requestLog.count == 3)
        }
    }
}
