import Foundation
import Testing
import TollgateCLI

@Suite("CLI against a live admin API: tenants, tokens, health")
struct TenantAndTokenTests {
    @Test func tenantLifecycleWithTablesJSONAndExitCodes() async throws {
        try await LiveAdmin.run { admin in
            let created = await admin.ok(["tenants", "create", "acme", "--name", "Acme Corp", "--currency", "EUR",
                                          "--budget", "500.00", "--period", "monthly", "--rpm", "600", "--max-concurrent", "8",
                                          "-o", "json"])
            let tenant = try created.json()
            let id = try #require(tenant["id"] as? String)
            #expect(tenant["slug"] as? String == "acme")
            #expect(tenant["currency"] as? String == "EUR")
            #expect((tenant["budget"] as? [String: String]) == ["amount": "500.00", "period": "monthly"])
            #expect((tenant["limits"] as? [String: Int]) == ["requestsPerMinute": 600, "maxConcurrent": 8])
            #expect((tenant["createdAt"] as? String)?.hasSuffix("Z") == true)

            // Table output: aligned, with money and currency, no colour off a terminal.
            let table = await admin.ok(["tenants", "list"])
            let lines = table.stdout.split(separator: "\n")
            #expect(lines.first?.hasPrefix("ID") == true)
            #expect(table.stdout.contains("acme") && table.stdout.contains("500.00 EUR monthly") && table.stdout.contains("600 rpm"))
            #expect(!table.stdout.contains("\u{1B}"))
            let header = try #require(lines.first)
            let row = try #require(lines.first { $0.contains("acme") })
            #expect(header.range(of: "SLUG")!.lowerBound.utf16Offset(in: header) == row.range(of: "acme")!.lowerBound.utf16Offset(in: row))

            // By slug or id; details.
            let shown = await admin.ok(["tenants", "get", "acme"])
            #expect(shown.stdout.contains(id) && shown.stdout.contains("Acme Corp"))
            #expect(try await admin.ok(["tenants", "get", id, "-o", "json"]).json()["slug"] as? String == "acme")
            let renamed = try await admin.ok(["tenants", "update", "acme", "--name", "Acme Corporation", "-o", "json"]).json()
            #expect(renamed["name"] as? String == "Acme Corporation")
            #expect(try await admin.ok(["tenants", "suspend", "acme", "-o", "json"]).json()["status"] as? String == "suspended")
            let suspended = try await admin.ok(["tenants", "list", "--status", "suspended", "-o", "json"]).data()
            #expect(suspended.map { $0["id"] as? String } == [id])
            #expect(try await admin.ok(["tenants", "resume", id, "-o", "json"]).json()["status"] as? String == "active")

            // Pagination: one per page, then --all.
            _ = try await admin.makeTenant("beta")
            let first = try await admin.ok(["tenants", "list", "--limit", "1", "-o", "json"]).json()
            let cursor = try #require(first["nextCursor"] as? String)
            let second = try await admin.ok(["tenants", "list", "--limit", "1", "--cursor", cursor, "-o", "json"]).data()
            #expect(second.count == 1 && second[0]["id"] as? String != (first["data"] as? [[String: Any]])?.first?["id"] as? String)
            let tablePage = await admin.ok(["tenants", "list", "--limit", "1"])
            #expect(tablePage.stderr.contains("--cursor"))
            let all = try await admin.ok(["tenants", "list", "--all", "--limit", "1", "-o", "json"]).json()
            #expect((all["data"] as? [Any])?.count == 2 && all["nextCursor"] == nil)

            // Exit codes: not found 3, conflict 5, server-side invalid 2 (with the problem's field).
            let missing = await admin.run(["tenants", "get", "nope"])
            #expect(missing.code == 3, "\(missing.summary)")
            let missingID = await admin.run(["tenants", "get", UUID().uuidString])
            #expect(missingID.code == 3)
            #expect(missingID.stderr.hasPrefix("error: ") && missingID.stderr.contains("HTTP 404") && missingID.stderr.contains("request id"))
            #expect(missingID.stderr.split(separator: "\n").count == 1)
            let duplicate = await admin.run(["tenants", "create", "acme", "--currency", "EUR"])
            #expect(duplicate.code == 5, "\(duplicate.summary)")
            #expect(duplicate.stderr.contains("HTTP 409"))
            let badSlug = await admin.run(["tenants", "create", "Bad_Slug", "--currency", "EUR"])
            #expect(badSlug.code == 2, "\(badSlug.summary)")
            #expect(badSlug.stderr.contains("slug"))
        }
    }

    @Test func tokensAreMintedOnceAndPermissionsMapToExitCodes() async throws {
        try await LiveAdmin.run { admin in
            let tenantID = try await admin.makeTenant("tok")

            // A viewer token, printed once (table mode), usable at once.
            let minted = await admin.ok(["tokens", "create", "--tenant", "tok", "--role", "viewer", "--name", "dash", "--expires", "30d"])
            #expect(minted.stdout.contains("Store it now; it cannot be shown again."))
            let viewer = try #require(minted.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .first { $0.hasPrefix("tg_admin_") })
            #expect(occurrences(of: viewer, in: minted.output) == 1)
            let me = try await admin.cli.ok(["whoami", "-o", "json"], token: viewer).json()
            #expect(me["role"] as? String == "tenant_viewer")
            #expect(me["tenantId"] as? String == tenantID)
            #expect(me["expiresAt"] is String)
            #expect(await admin.cli.ok(["tokens", "whoami"], token: viewer).stdout.contains("tenant_viewer"))

            // Admin token via JSON: the secret is in the API's `token` field, once.
            let adminJSON = try await admin.ok(["tokens", "create", "--tenant", tenantID, "--role", "admin", "--name", "alice",
                                                "-o", "json"]).json()
            let tenantAdmin = try #require(adminJSON["token"] as? String)
            let adminTokenID = try #require((adminJSON["adminToken"] as? [String: Any])?["id"] as? String)

            // Defaults to the token's own tenant; list/get never show secrets.
            let list = await admin.cli.ok(["tokens", "list"], token: tenantAdmin)
            #expect(list.stdout.contains("dash") && list.stdout.contains("alice"))
            let got = await admin.ok(["tokens", "get", adminTokenID])
            #expect(got.stdout.contains("tenant_admin"))
            for output in [list.output, got.output] {
                #expect(!output.contains(viewer) && !output.contains(tenantAdmin))
            }

            // Platform tokens.
            let platform = try await admin.ok(["tokens", "create", "--platform", "--name", "ci", "--expires", "2w", "-o", "json"]).json()
            #expect((platform["adminToken"] as? [String: Any])?["role"] as? String == "platform_admin")
            let platforms = try await admin.ok(["tokens", "list", "--platform", "-o", "json"]).data()
            #expect(platforms.contains { $0["name"] as? String == "ci" })
            #expect(platforms.allSatisfy { $0["token"] == nil })

            // Viewer mutating: 403 -> 4. Tenant token on a platform route: 4. Bad token: 401 -> 4.
            let forbidden = await admin.cli.run(["tokens", "create", "--role", "viewer", "--name", "x"], token: viewer)
            #expect(forbidden.code == 4, "\(forbidden.summary)")
            #expect(forbidden.stderr.contains("HTTP 403"))
            #expect(await admin.cli.run(["tokens", "list", "--platform"], token: tenantAdmin).code == 4)
            #expect(await admin.cli.run(["tenants", "create", "x", "--currency", "EUR"], token: tenantAdmin).code == 4)
            #expect(await admin.cli.run(["whoami"], token: "tg_admin_notarealtoken").code == 4)
            let noToken = await admin.cli.run(["whoami"])
            #expect(noToken.code == 4)
            #expect(noToken.stderr.contains("TOLLGATE_ADMIN_TOKEN"))
            // A platform token must name the tenant.
            let needsTenant = await admin.run(["keys", "list"])
            #expect(needsTenant.code == 2)
            #expect(needsTenant.stderr.contains("--tenant"))

            // Revoke: the token stops working.
            let revoked = try await admin.ok(["tokens", "revoke", adminTokenID, "-o", "json"]).json()
            #expect(revoked["revokedAt"] is String)
            #expect(await admin.cli.run(["whoami"], token: tenantAdmin).code == 4)
            #expect(await admin.run(["tokens", "revoke", UUID().uuidString]).code == 3)
        }
    }

    @Test func healthAndColour() async throws {
        try await LiveAdmin.run { admin in
            let health = try await admin.cli.ok(["health", "-o", "json"]).json()
            #expect((health["readiness"] as? [String: Any])?["status"] as? String == "ok")
            #expect(await admin.cli.ok(["health"]).stdout.contains("ready"))

            _ = try await admin.makeTenant("colour")
            let terminal = await admin.cli.run(["tenants", "list"], token: admin.platformToken, stdoutIsTerminal: true)
            #expect(terminal.stdout.contains("\u{1B}["))
            let noColor = await admin.cli.run(["tenants", "list"], token: admin.platformToken, stdoutIsTerminal: true,
                                              env: ["NO_COLOR": "1"])
            #expect(noColor.code == 0 && !noColor.stdout.contains("\u{1B}"))
            #expect(!(await admin.ok(["tenants", "list"]).stdout.contains("\u{1B}")))
        }
    }
}
