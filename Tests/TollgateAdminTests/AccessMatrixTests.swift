import Foundation
import HTTPTypes
import Testing
import TollgateDomain
import TollgateStorage

/// Every operation of admin/openapi.yaml, with a request that succeeds for a platform admin.
/// `{t}` is tenant A's id, `{k}`, `{c}`, `{tok}` its key, credential and spare token.
struct Route: Sendable, CustomTestStringConvertible {
    enum Scope: Sendable {
        /// Under /v1/tenants/{t}: tenant tokens of A only.
        case tenantPath
        /// Platform admins only.
        case platformOnly
        /// Any token; nothing tenant-specific in the request.
        case global
        /// Any token, but the request names one of tenant A's objects.
        case tenantObject
    }

    let operation: String
    let method: HTTPRequest.Method
    let path: String
    let body: [String: any Sendable]?
    let scope: Scope
    /// Run first with the platform token, so the request has something to act on.
    let prepare: (@Sendable (AdminHarness, AdminHarness.TenantFixture) async throws -> Void)?

    init(_ operation: String, _ method: HTTPRequest.Method, _ path: String, _ body: [String: any Sendable]? = nil,
         _ scope: Scope = .tenantPath,
         prepare: (@Sendable (AdminHarness, AdminHarness.TenantFixture) async throws -> Void)? = nil) {
        self.operation = operation; self.method = method; self.path = path; self.body = body
        self.scope = scope; self.prepare = prepare
    }

    var testDescription: String { "\(operation) \(method) \(path)" }

    func resolved(_ t: AdminHarness.TenantFixture) -> String {
        path.replacingOccurrences(of: "{t}", with: t.id).replacingOccurrences(of: "{k}", with: t.keyID)
            .replacingOccurrences(of: "{c}", with: t.credentialID).replacingOccurrences(of: "{tok}", with: t.spareTokenID)
    }

    static let range = "from=2020-01-01T00:00:00Z&to=2020-12-31T00:00:00Z"

    static let all: [Route] = [
        Route("whoami", .get, "/v1/whoami", nil, .global),
        Route("createTenant", .post, "/v1/tenants", ["slug": "new-tenant", "name": "New", "currency": "USD"], .platformOnly),
        Route("listTenants", .get, "/v1/tenants", nil, .global),
        Route("getTenant", .get, "/v1/tenants/{t}"),
        Route("updateTenant", .patch, "/v1/tenants/{t}", ["name": "Renamed"]),
        Route("getTenantBudget", .get, "/v1/tenants/{t}/budget"),
        Route("setTenantBudget", .put, "/v1/tenants/{t}/budget", ["amount": "10", "period": "daily"]),
        Route("deleteTenantBudget", .delete, "/v1/tenants/{t}/budget"),
        Route("getTenantLimits", .get, "/v1/tenants/{t}/limits"),
        Route("setTenantLimits", .put, "/v1/tenants/{t}/limits", ["requestsPerMinute": 5]),
        Route("createPlatformToken", .post, "/v1/admin-tokens", ["name": "ops"], .platformOnly),
        Route("listPlatformTokens", .get, "/v1/admin-tokens", nil, .platformOnly),
        Route("createTenantToken", .post, "/v1/tenants/{t}/admin-tokens", ["name": "ci", "role": "tenant_viewer"]),
        Route("listTenantTokens", .get, "/v1/tenants/{t}/admin-tokens"),
        Route("getAdminToken", .get, "/v1/admin-tokens/{tok}", nil, .tenantObject),
        Route("revokeAdminToken", .post, "/v1/admin-tokens/{tok}/revoke", nil, .tenantObject),
        Route("createCredential", .post, "/v1/tenants/{t}/credentials", ["name": "second", "secret": "sk-second-123456"]),
        Route("listCredentials", .get, "/v1/tenants/{t}/credentials"),
        Route("getCredential", .get, "/v1/tenants/{t}/credentials/{c}"),
        Route("updateCredential", .patch, "/v1/tenants/{t}/credentials/{c}", ["weight": 3]),
        Route("rotateCredential", .post, "/v1/tenants/{t}/credentials/{c}/rotate", ["secret": "sk-rotated-123456"]),
        Route("createKey", .post, "/v1/tenants/{t}/keys", ["name": "another"]),
        Route("listKeys", .get, "/v1/tenants/{t}/keys"),
        Route("getKey", .get, "/v1/tenants/{t}/keys/{k}"),
        Route("updateKey", .patch, "/v1/tenants/{t}/keys/{k}", ["name": "renamed"]),
        Route("rotateKey", .post, "/v1/tenants/{t}/keys/{k}/rotate", ["gracePeriodSeconds": 60]),
        Route("revokeKey", .post, "/v1/tenants/{t}/keys/{k}/revoke"),
        Route("getKeyBudget", .get, "/v1/tenants/{t}/keys/{k}/budget"),
        Route("setKeyBudget", .put, "/v1/tenants/{t}/keys/{k}/budget", ["amount": "5", "period": "weekly"]),
        Route("deleteKeyBudget", .delete, "/v1/tenants/{t}/keys/{k}/budget"),
        Route("getKeyLimits", .get, "/v1/tenants/{t}/keys/{k}/limits"),
        Route("setKeyLimits", .put, "/v1/tenants/{t}/keys/{k}/limits", ["maxConcurrent": 2]),
        Route("listPrices", .get, "/v1/prices", nil, .global),
        Route("setPrice", .put, "/v1/prices/EUR/test-model", ["inputPerMillion": "1", "outputPerMillion": "2"], .platformOnly),
        Route("deletePrice", .delete, "/v1/prices/EUR/mistral-embed", nil, .platformOnly),
        Route("listTenantPrices", .get, "/v1/tenants/{t}/prices"),
        Route("setTenantPrice", .put, "/v1/tenants/{t}/prices/mistral-small-latest",
              ["inputPerMillion": "0.1", "outputPerMillion": "0.2"]),
        Route("deleteTenantPrice", .delete, "/v1/tenants/{t}/prices/mistral-small-latest", prepare: { h, t in
            try await h.call(.put, "/v1/tenants/\(t.id)/prices/mistral-small-latest", token: h.platformToken,
                             json: ["inputPerMillion": "0.1", "outputPerMillion": "0.2"])
        }),
        Route("getUsage", .get, "/v1/tenants/{t}/usage?groupBy=model&\(range)"),
        Route("exportUsage", .get, "/v1/tenants/{t}/usage/export?\(range)"),
        Route("listAudit", .get, "/v1/audit", nil, .global),
        Route("getKeyring", .get, "/v1/keyring", nil, .platformOnly),
        Route("rewrapKeyring", .post, "/v1/keyring/rewrap", nil, .platformOnly),
    ]
}

enum Caller: String, CaseIterable, Sendable {
    case anonymous, viewer, tenantAdmin, otherTenantAdmin, platformAdmin
}

@Suite("Access matrices")
struct AccessMatrixTests {
    @Test func everyOperationOfTheSpecIsInTheMatrix() throws {
        let spec = try String(contentsOf: repositoryRoot.appendingPathComponent("admin/openapi.yaml"), encoding: .utf8)
        let regex = try NSRegularExpression(pattern: "operationId: (\\w+)")
        let ids = regex.matches(in: spec, range: NSRange(spec.startIndex..., in: spec)).map {
            String(spec[Range($0.range(at: 1), in: spec)!])
        }
        let covered = Set(Route.all.map(\.operation)).union(["getHealth", "getReadiness"])
        #expect(Set(ids) == covered, "missing: \(Set(ids).subtracting(covered)), extra: \(covered.subtracting(ids))")
    }

    /// Every route × every kind of caller gets exactly the documented answer.
    @Test(arguments: Caller.allCases)
    func roleMatrix(caller: Caller) async throws {
        try await AdminHarness.run { h in
            for route in Route.all {
                let a = try await h.makeTenant()
                let b = try await h.makeTenant()
                try await route.prepare?(h, a)
                let token: String? = switch caller {
                case .anonymous: nil
                case .viewer: a.viewer
                case .tenantAdmin: a.admin
                case .otherTenantAdmin: b.admin
                case .platformAdmin: h.platformToken
                }
                let reply = try await h.call(route.method, route.resolved(a), token: token, json: route.body)
                let expected = Self.expectedStatus(route: route, caller: caller)
                if expected == 200 {
                    #expect((200..<300).contains(reply.status.code), "\(caller) \(route.operation): \(reply.status) \(reply.body)")
                } else {
                    #expect(reply.status.code == expected, "\(caller) \(route.operation): \(reply.status) \(reply.body)")
                    #expect(reply.headers[.contentType] == "application/problem+json", "\(route.operation)")
                }
            }
        }
    }

    static func expectedStatus(route: Route, caller: Caller) -> Int {
        let mutating = route.method != .get
        switch (caller, route.scope) {
        case (.anonymous, _): return 401
        case (.platformAdmin, _): return 200
        case (_, .platformOnly): return 403
        case (.otherTenantAdmin, .tenantPath), (.otherTenantAdmin, .tenantObject): return 404
        case (.viewer, _) where mutating: return 403
        default: return 200
        }
    }

    /// Tenant A's admin token against tenant B's ids (in the path, or B's object ids under A's path):
    /// always 404, and nothing in the database changes.
    @Test func crossTenantMatrix() async throws {
        try await AdminHarness.run { h in
            let a = try await h.makeTenant()
            let b = try await h.makeTenant()
            let before = try await snapshot(h)
            for route in Route.all where route.scope == .tenantPath || route.scope == .tenantObject {
                // B's path entirely.
                let foreign = try await h.call(route.method, route.resolved(b), token: a.admin, json: route.body)
                #expect(foreign.status == .notFound, "\(route.operation) on B: \(foreign.status) \(foreign.body)")
                // A's tenant with B's object ids.
                if route.path.contains("{k}") || route.path.contains("{c}") {
                    let mixed = route.path.replacingOccurrences(of: "{t}", with: a.id).replacingOccurrences(of: "{k}", with: b.keyID)
                        .replacingOccurrences(of: "{c}", with: b.credentialID)
                    let reply = try await h.call(route.method, mixed, token: a.admin, json: route.body)
                    #expect(reply.status == .notFound, "\(route.operation) with B's ids: \(reply.status) \(reply.body)")
                }
            }
            let audit = try await h.call(.get, "/v1/audit?tenantId=\(b.id)", token: a.admin)
            #expect(audit.status == .notFound)
            #expect(try await snapshot(h) == before)
        }
    }

    /// A digest of every row an admin mutation could touch (audit rows excluded: they only grow).
    func snapshot(_ h: AdminHarness) async throws -> [String] {
        try await h.database.read { db in
            var digests: [String] = []
            for table in ["tenants", "credentials", "virtual_keys", "virtual_key_secrets", "budget_windows", "prices",
                          "idempotency_keys"] {
                let rows = try await db.query(
                    "SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM \(unescaped: table) t",
                    logger: h.database.logger)
                for try await digest in rows.decode(String.self) { digests.append("\(table):\(digest)") }
            }
            let tokens = try await db.query(
                "SELECT coalesce(md5(string_agg(id::text || coalesce(revoked_at::text, ''), ',' ORDER BY id)), '') FROM admin_tokens",
                logger: h.database.logger)
            for try await digest in tokens.decode(String.self) { digests.append("admin_tokens:\(digest)") }
            return digests
        }
    }

    @Test func unusableTokensAreUnauthenticated() async throws {
        try await AdminHarness.run { h in
            #expect(try await h.call(.get, "/v1/whoami", token: "tg_admin_nope").status == .unauthorized)
            let expired = try await AdminHarness.insertToken(role: .platformAdmin, tenantID: nil, database: h.database,
                                                             expiresAt: Date().addingTimeInterval(-1))
            #expect(try await h.call(.get, "/v1/whoami", token: expired).status == .unauthorized)
            let (id, token) = try await AdminHarness.insertTokenWithID(role: .platformAdmin, tenantID: nil, database: h.database)
            #expect(try await h.call(.get, "/v1/whoami", token: token).status == .ok)
            #expect(try await h.call(.post, "/v1/admin-tokens/\(id.uuidString)/revoke", token: h.platformToken).status == .ok)
            #expect(try await h.call(.get, "/v1/whoami", token: token).status == .unauthorized)
            var bad = Array(token)
            bad[bad.count - 8] = bad[bad.count - 8] == "a" ? "b" : "a"
            #expect(try await h.call(.get, "/v1/whoami", token: String(bad)).status == .unauthorized)
        }
    }
}
