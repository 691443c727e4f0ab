import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TollgateCLI

/// Help, completion scripts, local validation and contexts: no server needed.
@Suite("CLI help, values and contexts")
struct HelpAndLocalTests {
    let cli = CLI(environment: ["HOME": "/nonexistent-tollgate-home"])

    static let commands: [[String]] = [
        [], ["whoami"], ["health"],
        ["tenants"], ["tenants", "create"], ["tenants", "list"], ["tenants", "get"], ["tenants", "update"],
        ["tenants", "suspend"], ["tenants", "resume"],
        ["tokens"], ["tokens", "create"], ["tokens", "list"], ["tokens", "get"], ["tokens", "revoke"], ["tokens", "whoami"],
        ["credentials"], ["credentials", "create"], ["credentials", "list"], ["credentials", "get"],
        ["credentials", "update"], ["credentials", "rotate"],
        ["keys"], ["keys", "create"], ["keys", "list"], ["keys", "show"], ["keys", "update"], ["keys", "rotate"],
        ["keys", "revoke"],
        ["budget"], ["budget", "get"], ["budget", "set"], ["budget", "clear"],
        ["limits"], ["limits", "get"], ["limits", "set"], ["limits", "clear"],
        ["prices"], ["prices", "list"], ["prices", "set"], ["prices", "delete"],
        ["usage"], ["usage", "report"], ["usage", "export"],
        ["audit"], ["audit", "list"],
        ["keyring"], ["keyring", "status"], ["keyring", "rewrap"],
        ["context"], ["context", "set"], ["context", "use"], ["context", "list"], ["context", "show"], ["context", "delete"],
        ["migrate"], ["bootstrap"], ["generate-secrets"],
    ]

    @Test("--help renders for every command", arguments: commands)
    func helpRenders(_ path: [String]) async {
        let result = await cli.run(path + ["--help"])
        #expect(result.code == 0, "\(result.summary)")
        #expect(result.stdout.contains("USAGE: tollgate \(path.joined(separator: " "))"), "\(result.summary)")
        #expect(result.stdout.contains("OVERVIEW:"))
        #expect(result.stderr.isEmpty)
    }

    @Test func rootHelpDocumentsExitCodesConnectionAndCompletion() async {
        let help = await cli.run(["--help"]).stdout
        for text in ["EXIT CODES", "3  not found", "4  permission denied", "6  admin API", "TOLLGATE_ADMIN_URL",
                     "TOLLGATE_ADMIN_TOKEN", "--generate-completion-script", "context", "keys"] {
            #expect(help.contains(text), "root help lacks \(text)")
        }
        // No subcommand prints the help too, successfully.
        #expect(await cli.run([]).stdout.contains("USAGE: tollgate"))
        #expect(await cli.run(["help", "keys", "create"]).stdout.contains("USAGE: tollgate keys create"))
    }

    @Test("completion scripts", arguments: ["bash", "zsh", "fish"])
    func completionScript(_ shell: String) async {
        let result = await cli.run(["--generate-completion-script", shell])
        #expect(result.code == 0)
        #expect(result.stdout.contains("tollgate"))
        #expect(result.stdout.contains("credentials"))
        #expect(result.stdout.count > 1000)
    }

    @Test func invalidHumanValuesAreUsageErrorsBeforeAnyRequest() async {
        // No server at this address: a request would give exit code 6, not 2.
        let env = ["TOLLGATE_ADMIN_URL": "http://127.0.0.1:1", "TOLLGATE_ADMIN_TOKEN": "tg_admin_x"]
        let cases: [[String]] = [
            ["keys", "create", "--name", "k", "--budget", "25.00.0", "--period", "monthly"],
            ["keys", "create", "--name", "k", "--budget", "-5", "--period", "monthly"],
            ["keys", "create", "--name", "k", "--budget", "0.0000000001", "--period", "monthly"],
            ["keys", "create", "--name", "k", "--budget", "25"],
            ["keys", "create", "--name", "k", "--budget", "25", "--period", "yearly"],
            ["keys", "create", "--name", "k", "--expires", "30x"],
            ["keys", "create", "--name", "k", "--expires", "2001-01-01"],
            ["keys", "create", "--name", "k", "--expires", "soon"],
            ["keys", "create", "--name", "k", "--endpoints", "chat,telepathy"],
            ["keys", "create", "--name", "k", "--models", "mistral small"],
            ["keys", "create", "--name", "k", "--rpm", "0"],
            ["keys", "create", "--name", "k", "--metadata", "novalue"],
            ["keys", "rotate", "k", "--grace", "31d"],
            ["keys", "update", "k"],
            ["tenants", "create", "acme", "--currency", "GBP"],
            ["tenants", "list", "--limit", "500"],
            ["budget", "set", "abc", "--period", "daily"],
            ["usage", "report", "--from", "2026-11-02", "--to", "2026-11-01"],
            ["usage", "report", "--from", "2024-01-01", "--to", "2026-01-01"],
            ["tokens", "create", "--name", "x"],
            ["tokens", "create", "--name", "x", "--platform", "--role", "admin"],
            ["credentials", "update", "main"],
            ["limits", "set"],
            ["whoami", "--admin-url", "ftp://example.com"],
            ["keys", "list", "--bogus"],
        ]
        for arguments in cases {
            let result = await cli.run(arguments, env: env)
            #expect(result.code == 2, "\(result.summary)")
            #expect(!result.stderr.isEmpty)
            #expect(result.stdout.isEmpty)
        }
    }

    @Test func secretsAreNeverAcceptedFromArguments() async {
        let env = ["TOLLGATE_ADMIN_URL": "http://127.0.0.1:1", "TOLLGATE_ADMIN_TOKEN": "tg_admin_x"]
        for flag in ["--secret", "--api-key", "--mistral-key"] {
            for command in [["credentials", "create", "--name", "main"], ["credentials", "rotate", "main"]] {
                let result = await cli.run(command + [flag, "sk-from-argv-123456"], env: env)
                #expect(result.code == 2, "\(result.summary)")
                #expect(result.stderr.contains("never taken from the command line"))
                #expect(!result.output.contains("sk-from-argv-123456"))
            }
        }
        // Nothing on stdin and no terminal: refused before any request (else exit 6).
        let empty = await cli.run(["credentials", "create", "--name", "main"], stdin: "", env: env)
        #expect(empty.code == 2, "\(empty.summary)")
        #expect(empty.stderr.contains("standard input"))
        // The secret flag is not advertised.
        #expect(!(await cli.run(["credentials", "create", "--help"]).stdout.contains("--secret")))
    }

    @Test func unreachableServerExitsSix() async {
        let result = await cli.run(["tenants", "list"], env: ["TOLLGATE_ADMIN_URL": "http://127.0.0.1:1", "TOLLGATE_ADMIN_TOKEN": "tg_admin_x"])
        #expect(result.code == 6, "\(result.summary)")
        #expect(result.stderr.hasPrefix("error: Cannot reach the admin API at http://127.0.0.1:1"))
        #expect(result.stderr.split(separator: "\n").count == 1)
        let health = await cli.run(["health", "--admin-url", "http://127.0.0.1:1"])
        #expect(health.code == 6)
    }

    @Test func unreachableDatabaseExitsSixInsteadOfHanging() async {
        let result = await cli.run(["migrate", "--status", "--database-url", "postgres://tollgate@127.0.0.1:1/tollgate"])
        #expect(result.code == 6, "\(result.summary)")
        #expect(result.stderr.contains("Cannot reach the database"))
    }

    @Test func contextsAreStoredPrivatelyAndFollowPrecedence() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tgctx-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("nested/config.json").path
        let cli = CLI(environment: ["HOME": directory.path, "TOLLGATE_CONFIG": config])
        let token = "tg_admin_ctxSecretValue1234567890"

        let empty = await cli.run(["context", "list"])
        #expect(empty.code == 0)
        #expect(empty.stdout.contains("No contexts"))

        // A new context needs a URL; the token comes from stdin only.
        #expect(await cli.run(["context", "set", "prod"]).code == 2)
        #expect(await cli.run(["context", "set", "prod", "--admin-url", "https://admin.example.com/v1/", "--token", token]).code == 2)
        let set = await cli.run(["context", "set", "prod", "--admin-url", "https://admin.example.com/v1/", "--token-stdin"],
                                stdin: token + "\n")
        #expect(set.code == 0, "\(set.summary)")
        #expect(set.stdout.contains("(current)"))
        // Prompted with echo off on a terminal.
        let prompted = await cli.run(["context", "set", "local", "--admin-url", "http://127.0.0.1:1", "--token-stdin"],
                                     terminalInput: "tg_admin_localtoken")
        #expect(prompted.code == 0, "\(prompted.summary)")

        var info = stat()
        #expect(stat(config, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        let file = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: config))) as? [String: Any]
        #expect(file?["currentContext"] as? String == "prod")
        let contexts = file?["contexts"] as? [String: [String: String]]
        #expect(contexts?["prod"]?["adminUrl"] == "https://admin.example.com")
        #expect(contexts?["prod"]?["token"] == token)

        // Listing and showing never print the token.
        let list = await cli.run(["context", "list"])
        #expect(list.stdout.contains("prod") && list.stdout.contains("local") && list.stdout.contains("*"))
        let show = await cli.run(["context", "show", "-o", "json"])
        let shown = try show.json()
        #expect(shown["name"] as? String == "prod")
        #expect(shown["adminUrl"] as? String == "https://admin.example.com")
        for output in [list.output, show.output, set.output, await cli.run(["context", "show", "prod"]).output] {
            #expect(!output.contains(token))
        }

        // Precedence: the current context (prod, unresolvable host in .invalid) < env < flag.
        #expect(await cli.run(["context", "use", "local"]).code == 0)
        #expect(await cli.run(["context", "use", "nope"]).code == 3)
        let viaContext = await cli.run(["whoami"])
        #expect(viaContext.code == 6)
        #expect(viaContext.stderr.contains("127.0.0.1:1"))
        let viaEnv = await cli.run(["whoami"], env: ["TOLLGATE_ADMIN_URL": "http://127.0.0.1:2"])
        #expect(viaEnv.stderr.contains("127.0.0.1:2"), "\(viaEnv.summary)")
        let viaFlag = await cli.run(["whoami", "--admin-url", "http://127.0.0.1:3"], env: ["TOLLGATE_ADMIN_URL": "http://127.0.0.1:2"])
        #expect(viaFlag.stderr.contains("127.0.0.1:3"), "\(viaFlag.summary)")
        let named = await cli.run(["whoami", "--context", "missing"])
        #expect(named.code == 2)

        #expect(await cli.run(["context", "delete", "local"]).code == 0)
        #expect(await cli.run(["context", "show"]).code == 3)
        #expect(await cli.run(["context", "delete", "local"]).code == 3)
    }

    @Test func generateSecretsPrintsBothSettings() async {
        let result = await cli.run(["generate-secrets", "--version", "3"])
        #expect(result.code == 0)
        #expect(result.stdout.contains("TOLLGATE_MASTER_KEYS=3:"))
        #expect(result.stdout.contains("TOLLGATE_KEY_PEPPER="))
    }
}
