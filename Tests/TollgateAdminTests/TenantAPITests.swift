import Foundation
import Testing
import TollgateDomain
import TollgateStorage

@Suite("Tenants API")
struct TenantAPITests {
    @Test func createGetListUpdate() async throws {
        try await AdminHarness.run { h in
            let created = try await h.call(.post, "/v1/tenants", token: h.platformToken,
                                           json: ["slug": "acme", "name": "Acme", "currency": "USD",
                                                  "budget": ["amount": "100.50", "period": "monthly"],
                                                  "limits": ["requestsPerMinute": 60]])
            #expect(created.status == .created, "\(created.body)")
            let id = try #require(created.string("id"))
            #expect(created.string("status") == "active")
            #expect((created["budget"] as? [String: Any])?["amount"] as? String == "100.50")

            let fetched = try await h.call(.get, "/v1/tenants/\(id)", token: h.platformToken)
            #expect(fetched.status == .ok)
            #expect(fetched.string("slug") == "acme")

            let renamed = try await h.call(.patch, "/v1/tenants/\(id)", token: h.platformToken, json: ["name": "Acme Ltd"])
            #expect(renamed.string("name") == "Acme Ltd")

            let suspended = try await h.call(.patch, "/v1/tenants/\(id)", token: h.platformToken, json: ["status": "suspended"])
            #expect(suspended.string("status") == "suspended")

            let list = try await h.call(.get, "/v1/tenants", token: h.platformToken)
            #expect(list.data.contains { $0["id"] as? String == id })
        }
    }

    @Test func duplicateSlugIsConflict() async throws {
        try await AdminHarness.run { h in
            let body: [String: Any] = ["slug": "dup", "name": "A", "currency": "EUR"]
            #expect(try await h.call(.post, "/v1/tenants", token: h.platformToken, json: body).status == .created)
            let second = try await h.call(.post, "/v1/tenants", token: h.platformToken, json: body)
            #expect(second.status == .conflict)
            #expect(second.headers[.contentType] == "application/problem+json")
        }
    }

    @Test(arguments: [
        (["slug": "ok", "name": "A", "currency": "EUR", "id": "00000000-0000-0000-0000-000000000001"], "id"),
        (["slug": "ok", "name": "A", "currency": "EUR", "spent": "1.00"], "spent"),
        (["slug": "ok", "name": "A", "currency": "EUR", "tenantId": "x"], "tenantId"),
        (["slug": "Not A Slug", "name": "A", "currency": "EUR"], "slug"),
        (["slug": "ok", "name": "", "currency": "EUR"], "name"),
        (["slug": "ok", "name": "A", "currency": "GBP"], "currency"),
        (["slug": "ok", "name": "A"], "currency"),
        (["slug": "ok", "name": "A", "currency": "EUR", "budget": ["amount": "1.0000000001", "period": "daily"]], "budget.amount"),
        (["slug": "ok", "name": "A", "currency": "EUR", "budget": ["amount": "-1", "period": "daily"]], "budget.amount"),
        (["slug": "ok", "name": "A", "currency": "EUR", "limits": ["maxConcurrent": 0]], "limits.maxConcurrent"),
    ] as [([String: any Sendable], String)])
    func invalidCreateIsRejectedWithFieldError(body: [String: any Sendable], field: String) async throws {
        try await AdminHarness.run { h in
            let reply = try await h.call(.post, "/v1/tenants", token: h.platformToken, json: body)
            #expect(reply.status == .badRequest, "\(reply.body)")
            #expect(reply.headers[.contentType] == "application/problem+json")
            let errors = reply["errors"] as? [[String: Any]] ?? []
            #expect(errors.contains { ($0["field"] as? String)?.hasPrefix(field) == true }, "\(reply.body)")
            let count = try await h.database.read { db in
                var n = 0
                for try await c in try await db.query("SELECT count(*)::int FROM tenants", logger: h.database.logger).decode(Int.self) { n = c }
                return n
            }
            #expect(count == 0)
        }
    }

    @Test func malformedJSONAndWrongContentType() async throws {
        try await AdminHarness.run { h in
            let broken = try await h.call(.post, "/v1/tenants", token: h.platformToken, rawBody: "{\"slug\": ")
            #expect(broken.status == .badRequest, "\(broken.body)")
            let text = try await h.call(.post, "/v1/tenants", token: h.platformToken, rawBody: "slug=x",
                                        headers: [.contentType: "text/plain"])
            #expect(text.status.code == 415 || text.status == .badRequest, "\(text.body)")
        }
    }

    @Test func oversizedBodyIs413() async throws {
        try await AdminHarness.run(maxBodyBytes: 2048) { h in
            let reply = try await h.call(.post, "/v1/tenants", token: h.platformToken,
                                         json: ["slug": "big", "name": String(repeating: "x", count: 5000), "currency": "EUR"])
            #expect(reply.status == .contentTooLarge)
            #expect(reply.headers[.contentType] == "application/problem+json")
        }
    }

    @Test func idempotentCreateReplaysAndRejectsDifferentBody() async throws {
        try await AdminHarness.run { h in
            let body: [String: Any] = ["slug": "idem", "name": "Idem", "currency": "EUR"]
            let first = try await h.call(.post, "/v1/tenants", token: h.platformToken, json: body,
                                         headers: [.init("Idempotency-Key")!: "k-1"])
            let replay = try await h.call(.post, "/v1/tenants", token: h.platformToken, json: body,
                                          headers: [.init("Idempotency-Key")!: "k-1"])
            #expect(first.status == .created)
            #expect(replay.status == .created)
            #expect(first.string("id") == replay.string("id"))
            var other = body
            other["name"] = "Other"
            let mismatch = try await h.call(.post, "/v1/tenants", token: h.platformToken, json: other,
                                            headers: [.init("Idempotency-Key")!: "k-1"])
            #expect(mismatch.status == .unprocessableContent)
        }
    }

    @Test func paginationWalksEveryTenantOnce() async throws {
        try await AdminHarness.run { h in
            var ids = Set<String>()
            for index in 0..<7 {
                let reply = try await h.call(.post, "/v1/tenants", token: h.platformToken,
                                             json: ["slug": "p\(index)", "name": "P", "currency": "EUR"])
                ids.insert(try #require(reply.string("id")))
            }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let path = "/v1/tenants?limit=3" + (cursor.map { "&cursor=\($0)" } ?? "")
                let page = try await h.call(.get, path, token: h.platformToken)
                #expect(page.status == .ok)
                #expect(page.data.count <= 3)
                seen += page.data.compactMap { $0["id"] as? String }
                cursor = page.string("nextCursor")
            } while cursor != nil
            #expect(seen.count == 7)
            #expect(Set(seen) == ids)
            #expect(try await h.call(.get, "/v1/tenants?limit=0", token: h.platformToken).status == .badRequest)
            #expect(try await h.call(.get, "/v1/tenants?cursor=garbage!", token: h.platformToken).status == .badRequest)
        }
    }

    @Test func healthReadinessAndSpec() async throws {
        try await AdminHarness.run { h in
            #expect(try await h.call(.get, "/healthz", token: nil).status == .ok)
            let ready = try await h.call(.get, "/readyz", token: nil)
            #expect(ready.status == .ok, "\(ready.body)")
            #expect(ready.string("migrations") == "current")
            let spec = try await h.call(.get, "/openapi.yaml", token: nil)
            #expect(spec.status == .ok)
            #expect(spec.body.hasPrefix("openapi: 3.1"))
            #expect(spec.headers[.init("x-request-id")!] != nil)
        }
    }
}
