import Foundation
import Testing
import TollgateCLI
import TollgateDomain
import TollgateStorage

@Suite("CLI against a live admin API: budgets, limits, prices, usage, audit, keyring, database commands")
struct BudgetPriceUsageTests {
    @Test func budgetsAndLimitsForTenantsAndKeys() async throws {
        try await LiveAdmin.run { admin in
            let tenantID = try await admin.makeTenant("budget", currency: "USD")
            let tenantAdmin = try await admin.token(.tenantAdmin, tenant: tenantID)
            let viewer = try await admin.token(.tenantViewer, tenant: tenantID)
            _ = await admin.cli.ok(["keys", "create", "--name", "app"], token: tenantAdmin)

            // Tenant budget (platform admin, by slug).
            let set = try await admin.ok(["budget", "set", "500.000000001", "--period", "weekly", "--tenant", "budget", "-o", "json"]).json()
            #expect((set["budget"] as? [String: String]) == ["amount": "500.000000001", "period": "weekly"])
            #expect(set["currency"] as? String == "USD")
            let table = await admin.cli.ok(["budget", "get"], token: viewer)
            #expect(table.stdout.contains("500.000000001 USD weekly"))
            #expect(table.stdout.contains("0.00 USD"))
            #expect(await admin.cli.run(["budget", "set", "1", "--period", "daily"], token: viewer).code == 4)
            #expect(await admin.ok(["budget", "clear", "--tenant", tenantID]).stdout.contains("removed"))
            let cleared = try await admin.cli.ok(["budget", "get", "-o", "json"], token: viewer).json()
            #expect(cleared["budget"] == nil)

            // Key budget.
            let keyBudget = try await admin.cli.ok(["budget", "set", "25", "--period", "daily", "--key", "app", "-o", "json"],
                                                   token: tenantAdmin).json()
            #expect((keyBudget["budget"] as? [String: String])?["amount"] == "25.00")
            #expect((keyBudget["windowStart"] as? String)?.hasSuffix("T00:00:00Z") == true)
            #expect(await admin.cli.ok(["budget", "get", "--key", "app"], token: viewer).stdout.contains("25.00 USD daily"))
            let clearJSON = try await admin.cli.ok(["budget", "clear", "--key", "app", "-o", "json"], token: tenantAdmin).json()
            #expect(clearJSON["deleted"] as? String == "budget")
            #expect(try await admin.cli.ok(["budget", "get", "--key", "app", "-o", "json"], token: viewer).json()["budget"] == nil)
            #expect(await admin.cli.run(["budget", "get", "--key", "ghost"], token: viewer).code == 3)

            // Limits: set merges, --replace and clear.
            let limits = try await admin.cli.ok(["limits", "set", "--key", "app", "--rpm", "60", "--tpm", "200000", "--max-concurrent", "4",
                                                 "-o", "json"], token: tenantAdmin).json()
            #expect((limits as? [String: Int]) == ["requestsPerMinute": 60, "tokensPerMinute": 200000, "maxConcurrent": 4])
            let merged = try await admin.cli.ok(["limits", "set", "--key", "app", "--tpm", "unlimited", "-o", "json"], token: tenantAdmin).json()
            #expect((merged as? [String: Int]) == ["requestsPerMinute": 60, "maxConcurrent": 4])
            let replaced = try await admin.cli.ok(["limits", "set", "--key", "app", "--rpm", "10", "--replace", "-o", "json"],
                                                  token: tenantAdmin).json()
            #expect((replaced as? [String: Int]) == ["requestsPerMinute": 10])
            #expect(await admin.cli.ok(["limits", "get", "--key", "app"], token: viewer).stdout.contains("10"))
            #expect(try await admin.cli.ok(["limits", "clear", "--key", "app", "-o", "json"], token: tenantAdmin).json().isEmpty)
            let tenantLimits = try await admin.ok(["limits", "set", "--tenant", "budget", "--max-concurrent", "16", "-o", "json"]).json()
            #expect((tenantLimits as? [String: Int]) == ["maxConcurrent": 16])
            let shown = await admin.cli.ok(["limits", "get"], token: viewer)
            #expect(shown.stdout.contains("16") && shown.stdout.contains("unlimited"))
            #expect(try await admin.ok(["limits", "clear", "--tenant", "budget", "-o", "json"]).json().isEmpty)
            #expect(await admin.cli.run(["limits", "set", "--rpm", "5"], token: viewer).code == 4)
        }
    }

    @Test func platformAndTenantPrices() async throws {
        try await LiveAdmin.run { admin in
            let tenantID = try await admin.makeTenant("pricing")
            let tenantAdmin = try await admin.token(.tenantAdmin, tenant: tenantID)

            let set = try await admin.ok(["prices", "set", "cli-test-model", "--currency", "EUR", "--input-per-million", "0.10",
                                          "--output-per-million", "0.300000001", "-o", "json"]).json()
            #expect(set["scope"] as? String == "platform")
            #expect(set["outputPerMillion"] as? String == "0.300000001")
            #expect(set["cachedInputPerMillion"] as? String == "0.01")
            let platform = try await admin.ok(["prices", "list", "--currency", "EUR", "-o", "json"]).data()
            #expect(platform.contains { $0["model"] as? String == "cli-test-model" })
            #expect(await admin.ok(["prices", "list"]).stdout.contains("0.300000001 EUR"))
            #expect(await admin.run(["prices", "set", "m", "--input-per-million", "1", "--output-per-million", "1"]).code == 2)

            // Tenant override; the tenant token addresses its own tenant by default.
            let override = try await admin.cli.ok(["prices", "set", "cli-test-model", "--input-per-million", "0.05",
                                                   "--output-per-million", "0.15", "--per-page", "0.001", "-o", "json"],
                                                  token: tenantAdmin).json()
            #expect(override["scope"] as? String == "tenant" && override["perPage"] as? String == "0.001")
            let inForce = try await admin.cli.ok(["prices", "list", "-o", "json"], token: tenantAdmin).data()
            #expect(inForce.first { $0["model"] as? String == "cli-test-model" }?["scope"] as? String == "tenant")
            #expect(await admin.ok(["prices", "list", "--tenant", "pricing"]).stdout.contains("0.05 EUR"))
            #expect(await admin.cli.ok(["prices", "list", "--platform"], token: tenantAdmin).stdout.contains("0.10 EUR"))
            #expect(await admin.cli.run(["prices", "set", "x", "--platform", "--currency", "EUR", "--input-per-million", "1",
                                         "--output-per-million", "1"], token: tenantAdmin).code == 4)
            #expect(try await admin.cli.ok(["prices", "delete", "cli-test-model", "-o", "json"], token: tenantAdmin).json()["deleted"] as? String == "price")
            let back = try await admin.cli.ok(["prices", "list", "-o", "json"], token: tenantAdmin).data()
            #expect(back.first { $0["model"] as? String == "cli-test-model" }?["scope"] as? String == "platform")
            #expect(await admin.cli.run(["prices", "delete", "cli-test-model"], token: tenantAdmin).code == 3)

            #expect(await admin.ok(["prices", "delete", "cli-test-model", "--currency", "EUR"]).code == 0)
            #expect(await admin.run(["prices", "delete", "cli-test-model", "--currency", "EUR"]).code == 3)
        }
    }

    @Test func usageReportsCSVExportAndAudit() async throws {
        try await LiveAdmin.run { admin in
            let tenantID = try await admin.makeTenant("usage")
            let viewer = try await admin.token(.tenantViewer, tenant: tenantID)
            let key = try await admin.ok(["keys", "create", "--tenant", "usage", "--name", "app", "-o", "json"]).json()
            let keyID = try #require((key["key"] as? [String: Any])?["id"] as? String)
            let day1 = ISO8601DateFormatter().date(from: "2026-10-31T23:00:00Z")!
            let day2 = ISO8601DateFormatter().date(from: "2026-11-01T01:00:00Z")!
            let repository = UsageRepository(logger: admin.database.logger)
            try await admin.database.transaction { db in
                for (index, (date, model, cost)) in [(day1, "mistral-small-latest", Int64(150)), (day2, "mistral-small-latest", 300),
                                                     (day2, "codestral-latest", 7)].enumerated() {
                    try await repository.record(LedgerRow(
                        requestID: UUID(), startedAt: date, tenantID: UUID(uuidString: tenantID)!, keyID: UUID(uuidString: keyID)!,
                        credentialID: nil, endpoint: "chat", model: model,
                        usage: Usage(promptTokens: 10 * (index + 1), completionTokens: 5),
                        cost: Money(nanos: cost), currency: .eur, statusCode: 200, estimated: index == 2), on: db)
                }
            }
            let range = ["--from", "2026-10-01", "--to", "2026-12-01T00:00:00Z"]

            let byModel = try await admin.cli.ok(["usage", "report", "--by", "model", "-o", "json"] + range, token: viewer).json()
            #expect(byModel["groupBy"] as? String == "model")
            #expect(byModel["from"] as? String == "2026-10-01T00:00:00Z")
            let rows = byModel["rows"] as? [[String: Any]] ?? []
            #expect(rows.first { $0["group"] as? String == "mistral-small-latest" }?["cost"] as? String == "0.00000045")
            #expect((byModel["total"] as? [String: Any])?["cost"] as? String == "0.000000457")
            let table = await admin.cli.ok(["usage", "report", "--by", "model"] + range, token: viewer)
            #expect(table.stdout.contains("mistral-small-latest") && table.stdout.contains("0.00000045 EUR")
                && table.stdout.contains("TOTAL"))
            let byDay = try await admin.ok(["usage", "report", "--tenant", "usage", "--by", "day", "-o", "json"] + range).json()
            #expect((byDay["rows"] as? [[String: Any]])?.map { $0["group"] as? String } == ["2026-10-31", "2026-11-01"])
            let byKey = try await admin.cli.ok(["usage", "report", "--by", "key", "--key", "app", "-o", "json"] + range, token: viewer).json()
            #expect((byKey["rows"] as? [[String: Any]])?.first?["group"] as? String == keyID)
            #expect(await admin.cli.ok(["usage", "report", "--from", "1d"], token: viewer).stdout.contains("No usage"))
            let badRange = await admin.cli.run(["usage", "report", "--from", "2026-11-02", "--to", "2026-11-01"], token: viewer)
            #expect(badRange.code == 2)

            let csv = await admin.cli.ok(["usage", "export"] + range, token: viewer)
            let lines = csv.stdout.split(separator: "\n")
            #expect(lines.count == 4)
            #expect(lines.first?.hasPrefix("request_id,started_at") == true)
            let file = admin.home.appendingPathComponent("usage.csv").path
            let toFile = await admin.cli.ok(["usage", "export", "--output-file", file] + range, token: viewer)
            #expect(toFile.stdout.isEmpty && toFile.stderr.contains("Wrote"))
            #expect(try String(contentsOfFile: file, encoding: .utf8) == csv.stdout)

            // Audit: filters, paging, table.
            let audit = try await admin.ok(["audit", "list", "--tenant", "usage", "-o", "json"]).data()
            #expect(audit.contains { $0["action"] as? String == "key.create" })
            #expect(audit.allSatisfy { $0["tenantId"] as? String == tenantID })
            let filtered = try await admin.ok(["audit", "list", "--action", "tenant.create", "-o", "json"]).data()
            #expect(filtered.count == 1 && filtered[0]["targetId"] as? String == tenantID)
            let page = try await admin.ok(["audit", "list", "--limit", "1", "-o", "json"]).json()
            let cursor = try #require(page["nextCursor"] as? String)
            let next = try await admin.ok(["audit", "list", "--limit", "1", "--cursor", cursor, "-o", "json"]).data()
            #expect(next.count == 1)
            let all = try await admin.ok(["audit", "list", "--all", "--limit", "1", "-o", "json"]).data()
            #expect(all.count >= 2)
            let tableAudit = await admin.cli.ok(["audit", "list"], token: viewer)
            #expect(tableAudit.stdout.contains("key.create"))
        }
    }

    @Test func keyringThroughTheAPIAndDirect() async throws {
        try await LiveAdmin.run { admin in
            let tenantID = try await admin.makeTenant("ring")
            let status = try await admin.ok(["keyring", "status", "-o", "json"]).json()
            #expect(status["primaryVersion"] as? Int == 1)
            #expect(await admin.ok(["keyring", "status"]).stdout.contains("Primary master key version: 1"))
            let rewrap = try await admin.ok(["keyring", "rewrap", "-o", "json"]).json()
            #expect(rewrap["primaryVersion"] as? Int == 1 && rewrap["rewrapped"] as? Int == 0)
            let tenantAdmin = try await admin.token(.tenantAdmin, tenant: tenantID)
            #expect(await admin.cli.run(["keyring", "rewrap"], token: tenantAdmin).code == 4)

            let direct = await admin.cli.run(["keyring", "rewrap", "--direct", "--database-url", admin.databaseURL],
                                             env: ["TOLLGATE_MASTER_KEYS": TestSecrets.masterKeysEntry])
            #expect(direct.code == 0, "\(direct.summary)")
            #expect(direct.stdout.contains("already current"))
            let noKeys = await admin.cli.run(["keyring", "rewrap", "--direct", "--database-url", admin.databaseURL])
            #expect(noKeys.code == 2)
            #expect(await admin.cli.run(["keyring", "rewrap", "--database-url", admin.databaseURL]).code == 2)
        }
    }

    @Test func databaseCommands() async throws {
        try await LiveAdmin.run { admin in
            let env = ["DATABASE_URL": admin.databaseURL, "TOLLGATE_KEY_PEPPER": TestSecrets.pepperBase64]
            let status = await admin.cli.run(["migrate", "--status"], env: env)
            #expect(status.code == 0, "\(status.summary)")
            #expect(status.stdout.contains("pending: none"))
            #expect(await admin.cli.run(["migrate"], env: env).stdout.contains("up to date"))
            #expect(await admin.cli.run(["migrate"], env: ["HOME": "/tmp"]).code == 2)

            // A platform admin exists (the harness's): refused with 5 unless --force.
            let refused = await admin.cli.run(["bootstrap"], env: env)
            #expect(refused.code == 5, "\(refused.summary)")
            let forced = await admin.cli.run(["bootstrap", "--force", "--name", "ops"], env: env)
            #expect(forced.code == 0, "\(forced.summary)")
            let token = try #require(forced.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.hasPrefix("tg_admin_") })
            #expect(forced.stdout.contains("Store it now"))
            #expect(occurrences(of: token, in: forced.output) == 1)
            // The bootstrapped token works against the API.
            let me = try await admin.cli.ok(["whoami", "-o", "json"], token: token).json()
            #expect(me["role"] as? String == "platform_admin" && me["name"] as? String == "ops")
            #expect(await admin.cli.run(["bootstrap", "--force"], env: ["DATABASE_URL": admin.databaseURL]).code == 2)
        }
    }
}
