import Foundation
import HTTPTypes
import Testing
import TollgateDomain
import TollgateStorage

@Suite("Keys and credentials API")
struct KeyAndCredentialAPITests {
    @Test func credentialSecretIsEncryptedAndNeverReturned() async throws {
        try await AdminHarness.run { h in
            let t = try await h.makeTenant()
            let got = try await h.call(.get, "/v1/tenants/\(t.id)/credentials/\(t.credentialID)", token: t.admin)
            #expect(got.status == .ok)
            #expect(got.string("last4") == String(Canary.mistralSecret.suffix(4)))
            #expect(got.string("baseUrl") == "https://api.mistral.ai")
            #expect(!got.body.contains(Canary.mistralSecret))

            // The stored bytes are an envelope that opens to the secret with the tenant's data key only.
            let (wrapped, cipher) = try await h.database.read { db in
                var result: (Data, Data)?
                for try await row in try await db.query("""
                    SELECT t.wrapped_data_key, c.secret_ciphertext FROM credentials c JOIN tenants t ON t.id = c.tenant_id
                    WHERE c.id = \(UUID(uuidString: t.credentialID)!)
                    """, logger: h.database.logger).decode((Data, Data).self) { result = row }
                return result!
            }
            #expect(!String(decoding: cipher, as: UTF8.self).contains(Canary.mistralSecret))
            let tenantID = UUID(uuidString: t.id)!
            let dataKey = try h.keyring.unwrapDataKey(wrapped, tenantID: tenantID)
            let plain = try CredentialCipher(dataKey: dataKey, tenantID: tenantID)
                .decrypt(cipher, credentialID: UUID(uuidString: t.credentialID)!)
            #expect(plain == Canary.mistralSecret)

            let rotated = try await h.call(.post, "/v1/tenants/\(t.id)/credentials/\(t.credentialID)/rotate", token: t.admin,
                                           json: ["secret": "sk-rotated-1234567890"])
            #expect(rotated.status == .ok)
            #expect(rotated.string("last4") == "7890")
        }
    }

    @Test(arguments: [
        "http://api.mistral.ai", "https://127.0.0.1", "https://localhost:8443", "https://10.0.0.8/v1",
        "https://169.254.169.254", "https://[::1]", "https://user:pw@api.mistral.ai", "not a url",
    ])
    func credentialBaseURLGuardsAgainstSSRF(url: String) async throws {
        try await AdminHarness.run { h in
            let t = try await h.makeTenant()
            let reply = try await h.call(.post, "/v1/tenants/\(t.id)/credentials", token: t.admin,
                                         json: ["name": "bad", "secret": "sk-abcdefgh12", "baseUrl": url])
            #expect(reply.status == .badRequest, "\(reply.body)")
            #expect(reply.body.contains("baseUrl"))
        }
    }

    @Test func keyIsShownOnceAndHasTheDocumentedFormat() async throws {
        try await AdminHarness.run { h in
            let t = try await h.makeTenant()
            let created = try await h.call(.post, "/v1/tenants/\(t.id)/keys", token: t.admin, json: [
                "name": "search", "models": ["mistral-small-*", "codestral-latest"], "endpoints": ["chat", "embeddings"],
                "metadata": ["team": "search"], "budget": ["amount": "25.00", "period": "monthly"],
                "limits": ["requestsPerMinute": 60, "tokensPerMinute": 200000, "maxConcurrent": 4],
            ])
            #expect(created.status == .created, "\(created.body)")
            let secret = try #require(created.string("secret"))
            let token = try SecretToken.parse(secret, as: .virtualKey)
            let key = try #require(created["key"] as? [String: Any])
            #expect(key["displayPrefix"] as? String == token.displayPrefix)
            #expect((key["displayPrefix"] as? String)?.count == 12)
            let id = try #require(key["id"] as? String)

            let fetched = try await h.call(.get, "/v1/tenants/\(t.id)/keys/\(id)", token: t.admin)
            #expect(!fetched.body.contains(secret))
            #expect(fetched.string("status") == "active")
            #expect((fetched["metadata"] as? [String: Any])?["team"] as? String == "search")

            // Only the HMAC is stored.
            let stored = try await h.database.read { db in
                var hashes: [Data] = []
                for try await hash in try await db.query("SELECT key_hash FROM virtual_key_secrets WHERE key_id = \(UUID(uuidString: id)!)",
                                                         logger: h.database.logger).decode(Data.self) { hashes.append(hash) }
                return hashes
            }
            #expect(stored == [Data(testHasher.hash(secret))])

            let budget = try await h.call(.get, "/v1/tenants/\(t.id)/keys/\(id)/budget", token: t.viewer)
            #expect(budget.string("remaining") == "25.00")
            #expect(budget.string("spent") == "0.00")
        }
    }

    @Test func rotationKeepsOldSecretForGraceThenRevokeEndsIt() async throws {
        try await AdminHarness.run { h in
            let t = try await h.makeTenant()
            let rotated = try await h.call(.post, "/v1/tenants/\(t.id)/keys/\(t.keyID)/rotate", token: t.admin,
                                           json: ["gracePeriodSeconds": 600])
            #expect(rotated.status == .ok, "\(rotated.body)")
            #expect((rotated["key"] as? [String: Any])?["previousSecretValidUntil"] != nil)
            let validity = try await h.database.read { db in
                var rows: [Date?] = []
                for try await until in try await db.query(
                    "SELECT valid_until FROM virtual_key_secrets WHERE key_id = \(UUID(uuidString: t.keyID)!) ORDER BY created_at",
                    logger: h.database.logger).decode(Date?.self) { rows.append(until) }
                return rows
            }
            #expect(validity.count == 2)
            let graceEnd = try #require(validity[0])
            #expect(abs(graceEnd.timeIntervalSinceNow - 600) < 30)
            #expect(validity[1] == nil)

            let revoked = try await h.call(.post, "/v1/tenants/\(t.id)/keys/\(t.keyID)/revoke", token: t.admin)
            #expect(revoked.string("status") == "revoked")
            let again = try await h.call(.post, "/v1/tenants/\(t.id)/keys/\(t.keyID)/rotate", token: t.admin, json: [:])
            #expect(again.status == .conflict)
            let listed = try await h.call(.get, "/v1/tenants/\(t.id)/keys?status=revoked", token: t.viewer)
            #expect(listed.data.map { $0["id"] as? String } == [t.keyID])
            #expect(try await h.call(.get, "/v1/tenants/\(t.id)/keys?status=active", token: t.viewer).data.isEmpty)
        }
    }

    @Test func keyRejectsForeignCredentialsAndBadPatterns() async throws {
        try await AdminHarness.run { h in
            let a = try await h.makeTenant()
            let b = try await h.makeTenant()
            let foreign = try await h.call(.post, "/v1/tenants/\(a.id)/keys", token: a.admin,
                                           json: ["name": "x", "credentialIds": [b.credentialID]])
            #expect(foreign.status == .badRequest)
            #expect(foreign.body.contains("credentialIds.0"))
            let pattern = try await h.call(.post, "/v1/tenants/\(a.id)/keys", token: a.admin,
                                            json: ["name": "x", "models": ["mistral small"]])
            #expect(pattern.status == .badRequest)
            let expired = try await h.call(.post, "/v1/tenants/\(a.id)/keys", token: a.admin,
                                            json: ["name": "x", "expiresAt": "2001-01-01T00:00:00Z"])
            #expect(expired.status == .badRequest)
        }
    }

    @Test func idempotentKeyCreateReplaysTheSameSecretStoredSealed() async throws {
        try await AdminHarness.run { h in
            let t = try await h.makeTenant()
            let headers: HTTPFields = [.init("Idempotency-Key")!: "mint-1"]
            let first = try await h.call(.post, "/v1/tenants/\(t.id)/keys", token: t.admin, json: ["name": "once"], headers: headers)
            let second = try await h.call(.post, "/v1/tenants/\(t.id)/keys", token: t.admin, json: ["name": "once"], headers: headers)
            #expect(first.status == .created)
            let secret = try #require(first.string("secret"))
            #expect(second.string("secret") == secret)
            let keys = try await h.call(.get, "/v1/tenants/\(t.id)/keys?name=once", token: t.admin)
            #expect(keys.data.count == 1)
            let stored = try await h.database.read { db in
                var bodies: [Data] = []
                for try await (body, sealed) in try await db.query(
                    "SELECT response_body, response_sealed FROM idempotency_keys", logger: h.database.logger).decode((Data, Bool).self) {
                    #expect(sealed)
                    bodies.append(body)
                }
                return bodies
            }
            #expect(stored.count == 1)
            #expect(!String(decoding: stored[0], as: UTF8.self).contains(secret))
        }
    }
}

