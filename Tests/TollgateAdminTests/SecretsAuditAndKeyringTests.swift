import Foundation
import PostgresNIO
import Testing
import TollgateDomain
import TollgateStorage
import TollgateTestSupport

@Suite("Secrets, audit, usage and keyring")
struct SecretsAuditAndKeyringTests {
    /// The canary Mistral key, minted virtual keys and admin tokens appear only in the one response
    /// that creates them: never in later responses, logs or audit rows.
    @Test func noSecretLeaksAfterCreation() async throws {
        try await AdminHarness.run { h in
            let t = try await h.makeTenant()
            let minted = try await h.call(.post, "/v1/tenants/\(t.id)/keys", token: t.admin, json: ["name": "leak-check"])
            let keySecret = try #require(minted.string("secret"))
            let token = try await h.call(.post, "/v1/tenants/\(t.id)/admin-tokens", token: t.admin,
                                         json: ["name": "ci", "role": "tenant_admin"])
            let tokenSecret = try #require(token.string("token"))
            let canaries = [Canary.mistralSecret, keySecret, tokenSecret, h.platformToken, t.admin]

            var bodies: [String] = []
            for path in ["/v1/tenants/\(t.id)/credentials", "/v1/tenants/\(t.id)/credentials/\(t.credentialID)",
                         "/v1/tenants/\(t.id)/keys", "/v1/tenants/\(t.id)/admin-tokens", "/v1/audit", "/v1/whoami",
                         "/v1/tenants/\(t.id)"] {
                bodies.append(try await h.call(.get, path, token: h.platformToken).body)
            }
            // Error paths echo nothing secret either.
            bodies.append(try await h.call(.post, "/v1/tenants/\(t.id)/credentials", token: t.admin,
                                           json: ["name": "main", "secret": Canary.mistralSecret]).body)
            bodies.append(try await h.call(.get, "/v1/whoami", token: keySecret).body)
            let metrics = try await h.call(.get, "/metrics", token: nil)
            #expect(metrics.status == .ok)
            #expect(metrics.body.contains("hb_requests") || metrics.body.contains("http_"), "metrics are recorded: \(metrics.body.prefix(300))")
            bodies.append(metrics.body)
            let audit = try await h.database.read { db in
                var rows: [String] = []
                for try await row in try await db.query("SELECT t::text FROM audit_log t", logger: h.database.logger).decode(String.self) {
                    rows.append(row)
                }
                return rows
            }
            #expect(!audit.isEmpty)
            let everything = bodies + audit + h.logs.all
            for canary in canaries {
                for text in everything { #expect(!text.contains(canary), "secret leaked into: \(text.prefix(200))") }
            }
        }
    }

    @Test func mutationsAreAuditedWithActorAndTenantTokensSeeOnlyTheirOwn() async throws {
        try await AdminHarness.run { h in
            let a = try await h.makeTenant()
            let b = try await h.makeTenant()
            try await h.call(.post, "/v1/tenants/\(a.id)/keys/\(a.keyID)/revoke", token: a.admin)
            let own = try await h.call(.get, "/v1/audit", token: a.viewer)
            #expect(own.status == .ok)
            #expect(own.data.allSatisfy { $0["tenantId"] as? String == a.id })
            let revoke = try #require(own.data.first { $0["action"] as? String == "key.revoke" })
            #expect(revoke["targetId"] as? String == a.keyID)
            #expect(revoke["actorRole"] as? String == "tenant_admin")
            let all = try await h.call(.get, "/v1/audit?limit=200", token: h.platformToken)
            #expect(all.data.contains { $0["tenantId"] as? String == b.id })
            let filtered = try await h.call(.get, "/v1/audit?action=credential.create", token: h.platformToken)
            #expect(filtered.data.count == 2)
        }
    }

    @Test func usageReportAndCSVExport() async throws {
        try await AdminHarness.run { h in
            let t = try await h.makeTenant()
            let tenantID = UUID(uuidString: t.id)!, keyID = UUID(uuidString: t.keyID)!
            let day1 = ISO8601DateFormatter().date(from: "2026-10-31T23:00:00Z")!
            let day2 = ISO8601DateFormatter().date(from: "2026-11-01T01:00:00Z")!
            let repository = UsageRepository(logger: h.database.logger)
            try await h.database.transaction { db in
                for (index, (date, model, cost)) in [(day1, "mistral-small-latest", Int64(150)),
                                                     (day2, "mistral-small-latest", 300), (day2, "codestral-latest", 7)].enumerated() {
                    try await repository.record(LedgerRow(
                        requestID: UUID(), startedAt: date, tenantID: tenantID, keyID: keyID, credentialID: nil,
                        endpoint: "chat", model: model, usage: Usage(promptTokens: 10 * (index + 1), completionTokens: 5),
                        cost: Money(nanos: cost), currency: .eur, statusCode: 200, estimated: index == 2), on: db)
                }
            }
            let range = "from=2026-10-01T00:00:00Z&to=2026-12-01T00:00:00Z"
            let byModel = try await h.call(.get, "/v1/tenants/\(t.id)/usage?groupBy=model&\(range)", token: t.viewer)
            #expect(byModel.status == .ok, "\(byModel.body)")
            let rows = byModel["rows"] as? [[String: Any]] ?? []
            let small = try #require(rows.first { $0["group"] as? String == "mistral-small-latest" })
            #expect(small["requests"] as? Int == 2)
            #expect(small["cost"] as? String == "0.00000045")
            let total = try #require(byModel["total"] as? [String: Any])
            #expect(total["cost"] as? String == "0.000000457")
            #expect(total["estimatedRequests"] as? Int == 1)
            let byDay = try await h.call(.get, "/v1/tenants/\(t.id)/usage?groupBy=day&\(range)", token: t.viewer)
            #expect((byDay["rows"] as? [[String: Any]])?.map { $0["group"] as? String } == ["2026-10-31", "2026-11-01"])

            let csv = try await h.call(.get, "/v1/tenants/\(t.id)/usage/export?\(range)", token: t.viewer)
            #expect(csv.status == .ok)
            let lines = csv.body.split(separator: "\n")
            #expect(lines.count == 4)
            #expect(lines[0].hasPrefix("request_id,started_at"))
            #expect(csv.body.contains("0.00000015"))
            let backwards = try await h.call(.get, "/v1/tenants/\(t.id)/usage?groupBy=day&from=2026-12-01T00:00:00Z&to=2026-10-01T00:00:00Z",
                                             token: t.viewer)
            #expect(backwards.status == .badRequest)
        }
    }

    /// Rotation without downtime: add v2 as primary, rewrap through the API, drop v1: every
    /// credential still decrypts, and the API reports the move.
    @Test func keyringRotationAndRewrapKeepEveryCredentialReadable() async throws {
        let v1 = try testKeyring(versions: [1])
        let both = try testKeyring(versions: [1, 2], primary: 2)
        let v2only = try testKeyring(versions: [2])
        let template = try await migratedTemplate()
        let database = try await TestPostgres.shared.makeDatabase(template: template)
        // Phase 1: tenants and credentials under v1.
        let tenants: [[String]] = try await AdminHarness.run(keyring: v1, database: database) { h in
            var tenants: [[String]] = []
            for _ in 0..<3 {
                let t = try await h.makeTenant()
                tenants.append([t.id, t.credentialID])
            }
            let status = try await h.call(.get, "/v1/keyring", token: h.platformToken)
            #expect(status["primaryVersion"] as? Int == 1)
            return tenants
        }
        // Phase 2: v2 promoted; rewrap.
        try await AdminHarness.run(keyring: both, database: database) { h in
            let result = try await h.call(.post, "/v1/keyring/rewrap", token: h.platformToken)
            #expect(result.status == .ok, "\(result.body)")
            #expect(result["rewrapped"] as? Int == 3)
            let again = try await h.call(.post, "/v1/keyring/rewrap", token: h.platformToken)
            #expect(again["rewrapped"] as? Int == 0)
            #expect(again["alreadyCurrent"] as? Int == 3)
        }
        // Phase 3: v1 retired; everything still opens.
        try await AdminHarness.run(keyring: v2only, database: database) { h in
            for pair in tenants {
                let (tenant, credential) = (pair[0], pair[1])
                let (wrapped, cipher) = try await h.database.read { db in
                    var result: (Data, Data)?
                    for try await row in try await db.query("""
                        SELECT t.wrapped_data_key, c.secret_ciphertext FROM credentials c JOIN tenants t ON t.id = c.tenant_id
                        WHERE c.id = \(UUID(uuidString: credential)!)
                        """, logger: h.database.logger).decode((Data, Data).self) { result = row }
                    return result!
                }
                let tenantID = UUID(uuidString: tenant)!
                let key = try v2only.unwrapDataKey(wrapped, tenantID: tenantID)
                #expect(try CredentialCipher(dataKey: key, tenantID: tenantID)
                    .decrypt(cipher, credentialID: UUID(uuidString: credential)!) == Canary.mistralSecret)
            }
            let status = try await h.call(.get, "/v1/keyring", token: h.platformToken)
            #expect((status["tenantsByVersion"] as? [[String: Any]])?.map { $0["version"] as? Int } == [2])
        }
    }

    @Test func tenantBudgetWindowsFollowTheLimit() async throws {
        try await AdminHarness.run { h in
            let t = try await h.makeTenant()
            let set = try await h.call(.put, "/v1/tenants/\(t.id)/budget", token: t.admin, json: ["amount": "12.5", "period": "monthly"])
            #expect(set.status == .ok, "\(set.body)")
            #expect(set.string("remaining") == "12.50")
            let start = try #require(set.string("windowStart"))
            #expect(start.hasSuffix("-01T00:00:00Z"))
            // The data plane enforces the window row's limit: it must follow budget changes at once.
            try await h.call(.put, "/v1/tenants/\(t.id)/budget", token: t.admin, json: ["amount": "3", "period": "monthly"])
            let limit = try await h.database.read { db in
                var value: Int64 = -1
                for try await v in try await db.query("SELECT limit_nanos FROM budget_windows WHERE owner_id = \(UUID(uuidString: t.id)!)",
                                                      logger: h.database.logger).decode(Int64.self) { value = v }
                return value
            }
            #expect(limit == 3_000_000_000)
            #expect(try await h.call(.delete, "/v1/tenants/\(t.id)/budget", token: t.admin).status == .noContent)
            let cleared = try await h.call(.get, "/v1/tenants/\(t.id)/budget", token: t.admin)
            #expect(cleared["budget"] == nil)
        }
    }
}

@Suite("Start-up checks")
struct StartupCheckTests {
    /// Retiring a master key version before rewrapping would strand tenants: the server refuses to
    /// start and names the version (never a key).
    @Test func missingMasterKeyVersionStopsTheServerNamingTheVersion() async throws {
        let database = try await TestPostgres.shared.makeDatabase(template: try await migratedTemplate())
        try await AdminHarness.run(keyring: try testKeyring(versions: [1]), database: database) { h in
            _ = try await h.makeTenant()
        }
        let error = await #expect(throws: (any Error).self) {
            try await AdminHarness.run(keyring: try testKeyring(versions: [2]), database: database) { _ in }
        }
        let message = "\(error.map { "\($0)" } ?? "")"
        #expect(message.contains("version(s) 1"), "\(message)")
    }
}
