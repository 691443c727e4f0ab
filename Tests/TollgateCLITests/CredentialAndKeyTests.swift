import Foundation
import Testing
import TollgateCLI

@Suite("CLI against a live admin API: credentials and keys")
struct CredentialAndKeyTests {
    @Test func credentialsReadSecretsFromStdinOrPromptAndNeverPrintThem() async throws {
        try await LiveAdmin.run { admin in
            let tenantID = try await admin.makeTenant("cred")
            let tenantAdmin = try await admin.token(.tenantAdmin, tenant: tenantID)
            let viewer = try await admin.token(.tenantViewer, tenant: tenantID)
            let secret = "sk-canary-\(UUID().uuidString)"
            let rotated = "sk-rotated-\(UUID().uuidString)"
            var outputs: [String] = []

            let created = await admin.cli.ok(["credentials", "create", "--name", "main", "-o", "json"], token: tenantAdmin,
                                             stdin: secret + "\n")
            let credential = try created.json()
            let id = try #require(credential["id"] as? String)
            #expect(credential["last4"] as? String == String(secret.suffix(4)))
            #expect(credential["baseUrl"] as? String == "https://api.mistral.ai")
            #expect(credential["secret"] == nil)
            outputs.append(created.output)

            // Interactive: prompted on the terminal (echo off in the real terminal).
            let prompted = await admin.cli.run(["credentials", "create", "--tenant", "cred", "--name", "backup", "--weight", "0"],
                                               token: admin.platformToken, terminalInput: secret + "-2")
            #expect(prompted.code == 0, "\(prompted.summary)")
            #expect(prompted.stdout.contains("backup"))
            outputs.append(prompted.output)

            let list = await admin.cli.ok(["credentials", "list"], token: viewer)
            #expect(list.stdout.contains("main") && list.stdout.contains("backup") && list.stdout.contains("…" + secret.suffix(4)))
            outputs.append(list.output)
            let byName = try await admin.cli.ok(["credentials", "get", "main", "-o", "json"], token: viewer).json()
            #expect(byName["id"] as? String == id)
            outputs.append(await admin.ok(["credentials", "get", id, "--tenant", tenantID]).output)

            let updated = try await admin.cli.ok(["credentials", "update", "backup", "--weight", "3", "--status", "disabled",
                                                  "--name", "standby", "-o", "json"], token: tenantAdmin).json()
            #expect(updated["weight"] as? Int == 3 && updated["status"] as? String == "disabled" && updated["name"] as? String == "standby")

            let rotation = await admin.cli.ok(["credentials", "rotate", "main", "-o", "json"], token: tenantAdmin, stdin: rotated)
            #expect(try rotation.json()["last4"] as? String == String(rotated.suffix(4)))
            outputs.append(rotation.output)

            // Errors: duplicate name 5, viewer 4, unknown 3, secret in argv 2.
            #expect(await admin.cli.run(["credentials", "create", "--name", "main"], token: tenantAdmin, stdin: secret).code == 5)
            #expect(await admin.cli.run(["credentials", "rotate", "main"], token: viewer, stdin: secret).code == 4)
            #expect(await admin.cli.run(["credentials", "get", "nope"], token: viewer).code == 3)
            let argv = await admin.cli.run(["credentials", "create", "--name", "argv", "--secret", secret], token: tenantAdmin)
            #expect(argv.code == 2)
            #expect(await admin.cli.ok(["credentials", "list", "-o", "json"], token: viewer).stdout.contains("argv") == false)

            outputs.append(await admin.ok(["audit", "list", "--tenant", "cred", "-o", "json"]).output)
            for output in outputs {
                #expect(!output.contains(secret) && !output.contains(rotated), "secret leaked: \(output)")
            }
        }
    }

    @Test func keysTakeHumanValuesAndShowTheirSecretOnce() async throws {
        try await LiveAdmin.run { admin in
            let tenantID = try await admin.makeTenant("keys")
            let tenantAdmin = try await admin.token(.tenantAdmin, tenant: tenantID)
            let viewer = try await admin.token(.tenantViewer, tenant: tenantID)
            let credential = try await admin.cli.ok(["credentials", "create", "--name", "main", "-o", "json"], token: tenantAdmin,
                                                    stdin: "sk-test-credential-0001").json()
            let credentialID = try #require(credential["id"] as? String)

            // Table mode: the secret once, clearly marked.
            let created = await admin.cli.ok([
                "keys", "create", "--name", "app", "--budget", "25.00", "--period", "monthly",
                "--rpm", "60", "--tpm", "200000", "--max-concurrent", "4",
                "--models", "mistral-small-*,codestral-latest", "--endpoints", "chat,embeddings", "--expires", "30d",
                "--credentials", "main", "--metadata", "team=search", "--metadata", "env=prod", "--default-max-tokens", "512",
            ], token: tenantAdmin)
            #expect(created.stdout.contains("Store it now; it cannot be shown again."))
            #expect(created.stdout.contains("25.00 EUR monthly"))
            #expect(created.stdout.contains("60 rpm, 200000 tpm, 4 concurrent"))
            let secret = try #require(created.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.hasPrefix("tg_live_") })
            #expect(occurrences(of: secret, in: created.output) == 1)

            // JSON: exact stored values, API field names.
            let show = try await admin.cli.ok(["keys", "show", "app", "-o", "json"], token: viewer).json()
            let keyID = try #require(show["id"] as? String)
            #expect(show["models"] as? [String] == ["mistral-small-*", "codestral-latest"])
            #expect(show["endpoints"] as? [String] == ["chat", "embeddings"])
            #expect(show["credentialIds"] as? [String] == [credentialID])
            #expect((show["budget"] as? [String: String]) == ["amount": "25.00", "period": "monthly"])
            #expect((show["limits"] as? [String: Int]) == ["requestsPerMinute": 60, "tokensPerMinute": 200000, "maxConcurrent": 4])
            #expect((show["metadata"] as? [String: String]) == ["team": "search", "env": "prod"])
            #expect(show["defaultMaxTokens"] as? Int == 512)
            let expires = try #require((show["expiresAt"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) })
            #expect(abs(expires.timeIntervalSinceNow - 30 * 86_400) < 120)
            #expect(show["secret"] == nil)

            // JSON create: `secret` once.
            let json = await admin.cli.ok(["keys", "create", "--name", "batch-job", "--expires", "2099-01-01", "-o", "json"], token: tenantAdmin)
            let second = try json.json()
            let secondSecret = try #require(second["secret"] as? String)
            #expect(occurrences(of: secondSecret, in: json.output) == 1)
            #expect((second["key"] as? [String: Any])?["expiresAt"] as? String == "2099-01-01T00:00:00Z")

            // Later outputs never contain a secret.
            var later: [CLIResult] = []
            later.append(await admin.cli.ok(["keys", "list"], token: viewer))
            later.append(await admin.cli.ok(["keys", "list", "-o", "json", "--all"], token: viewer))
            later.append(await admin.cli.ok(["keys", "show", keyID], token: viewer))
            later.append(await admin.cli.ok(["keys", "list", "--status", "active", "--name", "ap", "-o", "json"], token: viewer))
            #expect(later[0].stdout.contains("app") && later[0].stdout.contains("batch-job") && later[0].stdout.contains("25.00 EUR monthly"))
            #expect(try later[3].data().count == 1)

            // Update.
            let updated = try await admin.cli.ok(["keys", "update", "app", "--name", "app2", "--models", "", "--endpoints", "chat",
                                                  "--credentials", "", "--expires", "12h", "-o", "json"], token: tenantAdmin).json()
            #expect(updated["name"] as? String == "app2")
            #expect(updated["models"] as? [String] == [])
            #expect(updated["endpoints"] as? [String] == ["chat"])
            #expect(updated["credentialIds"] as? [String] == [])

            // Rotate with grace: a new secret once, the old valid for about an hour.
            let rotated = await admin.cli.ok(["keys", "rotate", "app2", "--grace", "1h"], token: tenantAdmin)
            let newSecret = try #require(rotated.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.hasPrefix("tg_live_") })
            #expect(newSecret != secret)
            #expect(occurrences(of: newSecret, in: rotated.output) == 1)
            #expect(rotated.stdout.contains("previous secret valid until"))
            let afterRotate = try await admin.cli.ok(["keys", "show", keyID, "-o", "json"], token: viewer).json()
            let until = try #require((afterRotate["previousSecretValidUntil"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) })
            #expect(abs(until.timeIntervalSinceNow - 3600) < 120)
            later.append(await admin.cli.ok(["keys", "show", keyID], token: viewer))
            later.append(await admin.ok(["audit", "list", "--all", "-o", "json"]))

            // Revoke; then errors.
            let revoked = try await admin.cli.ok(["keys", "revoke", "app2", "-o", "json"], token: tenantAdmin).json()
            #expect(revoked["status"] as? String == "revoked")
            let rotateRevoked = await admin.cli.run(["keys", "rotate", keyID], token: tenantAdmin)
            #expect(rotateRevoked.code == 5, "\(rotateRevoked.summary)")
            #expect(await admin.cli.run(["keys", "show", "nope"], token: viewer).code == 3)
            #expect(await admin.cli.run(["keys", "show", UUID().uuidString], token: viewer).code == 3)
            #expect(await admin.cli.run(["keys", "create", "--name", "v"], token: viewer).code == 4)
            #expect(await admin.cli.run(["keys", "create", "--name", "v", "--credentials", "nope"], token: tenantAdmin).code == 3)
            #expect(await admin.cli.run(["keys", "create", "--name", "v", "--budget", "1e3", "--period", "daily"], token: tenantAdmin).code == 2)
            #expect(await admin.cli.run(["keys", "create", "--name", "v", "--expires", "yesterday"], token: tenantAdmin).code == 2)
            // Another tenant's key is not found (and unchanged).
            let otherTenant = try await admin.makeTenant("other")
            let otherAdmin = try await admin.token(.tenantAdmin, tenant: otherTenant)
            #expect(await admin.cli.run(["keys", "revoke", keyID, "--tenant", tenantID], token: otherAdmin).code == 3)

            for result in later {
                for minted in [secret, secondSecret, newSecret] {
                    #expect(!result.output.contains(minted), "secret in later output: \(result.summary)")
                }
            }
        }
    }
}
