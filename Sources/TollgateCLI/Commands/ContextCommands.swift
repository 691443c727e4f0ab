import ArgumentParser
import Foundation

struct ContextCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "context",
        abstract: "Named connections (admin URL + token) in the config file, like kubectl contexts.",
        discussion: """
            The config file is --config, else $TOLLGATE_CONFIG, else ~/.config/tollgate/config.json; it is written \
            with mode 0600. Flags (--admin-url, --token) override environment variables (TOLLGATE_ADMIN_URL, \
            TOLLGATE_ADMIN_TOKEN), which override the current context. --context NAME or TOLLGATE_CONTEXT picks \
            another context for one command.

            Examples:
              tollgate context set prod --admin-url https://admin.example.com \\
                --token-stdin < token.txt
              tollgate context set local --admin-url http://127.0.0.1:8081 --use
              tollgate context use prod
              tollgate context list
            """,
        subcommands: [SetContext.self, UseContext.self, ListContext.self, ShowContext.self, DeleteContext.self])

    struct SetContext: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Create or update a context.",
            discussion: """
                The token is never taken from arguments: with --token-stdin it is read from standard input \
                (or a prompt with echo off on a terminal). The first context created becomes the current one.

                Example:
                  pass show tollgate/prod | tollgate context set prod \\
                    --admin-url https://admin.example.com --token-stdin
                """)
        @Argument(help: "Context name.") var name: String
        @Option(name: .customLong("admin-url"), help: ArgumentHelp("Admin API URL (required for a new context).", valueName: "url"))
        var adminURL: String?
        @Flag(name: .customLong("token-stdin"), help: "Read the admin token from standard input (or a prompt with echo off).")
        var tokenStdin = false
        @Flag(name: .customLong("clear-token"), help: "Remove the context's stored token.")
        var clearToken = false
        @Flag(help: "Also make it the current context.") var use = false
        @OptionGroup var config: ConfigFileOption

        func validate() throws {
            guard !name.isEmpty, name.count <= 100, !name.contains(where: { $0.isWhitespace || $0.isNewline }) else {
                throw ValidationError("A context name is 1-100 characters without spaces")
            }
            if tokenStdin, clearToken { throw ValidationError("--token-stdin and --clear-token cannot be combined") }
        }

        func run() async throws {
            let store = try config.store()
            var file = try store.load()
            var context = file.contexts[name]
            if let adminURL {
                let url = try ServerOptions.normalize(adminURL)
                if context == nil { context = .init(adminUrl: url.absoluteString) } else { context!.adminUrl = url.absoluteString }
            }
            guard var context else {
                throw CLIError.usage("New context '\(name)' needs --admin-url")
            }
            if tokenStdin { context.token = try readSecret(prompt: "Admin token for \(name): ", what: "admin token") }
            if clearToken { context.token = nil }
            let created = file.contexts[name] == nil
            file.contexts[name] = context
            if use || file.currentContext == nil { file.currentContext = name }
            try store.save(file)
            say("Context '\(name)' \(created ? "created" : "updated") in \(store.path)"
                + (file.currentContext == name ? " (current)" : ""))
        }
    }

    struct UseContext: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "use", abstract: "Make a context the current one.",
            discussion: "Example:\n  tollgate context use prod")
        @Argument(help: "Context name.") var name: String
        @OptionGroup var config: ConfigFileOption

        func run() async throws {
            let store = try config.store()
            var file = try store.load()
            guard file.contexts[name] != nil else {
                throw CLIError.notFound("No context named '\(name)' in \(store.path)")
            }
            file.currentContext = name
            try store.save(file)
            say("Current context: \(name)")
        }
    }

    struct ListContext: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List contexts (* marks the current one). Tokens are never shown.")
        @OptionGroup var config: ConfigFileOption
        @Option(name: [.short, .customLong("output")], help: ArgumentHelp("table or json.", valueName: "format"))
        var output: OutputFormat = .table

        func run() async throws {
            let store = try config.store()
            let file = try store.load()
            let names = file.contexts.keys.sorted()
            let printer = Printer(format: output)
            if printer.isJSON {
                try printer.json(ContextListJSON(
                    currentContext: file.currentContext,
                    contexts: names.map { ContextJSON(name: $0, context: file.contexts[$0]!) }))
                return
            }
            printer.table(["CURRENT", "NAME", "ADMIN URL", "TOKEN"], names.map { name in
                let context = file.contexts[name]!
                return [file.currentContext == name ? "*" : "", name, context.adminUrl, redact(context.token)]
            }, empty: "No contexts in \(store.path) (create one: tollgate context set NAME --admin-url URL --token-stdin)")
        }
    }

    struct ShowContext: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show a context (default: the current one); the token is redacted.")
        @Argument(help: "Context name (default: the current context).") var name: String?
        @OptionGroup var config: ConfigFileOption
        @Option(name: [.short, .customLong("output")], help: ArgumentHelp("table or json.", valueName: "format"))
        var output: OutputFormat = .table

        func run() async throws {
            let store = try config.store()
            let file = try store.load()
            guard let name = name ?? file.currentContext else {
                throw CLIError.notFound("No current context in \(store.path) (tollgate context use NAME)")
            }
            guard let context = file.contexts[name] else {
                throw CLIError.notFound("No context named '\(name)' in \(store.path)")
            }
            let printer = Printer(format: output)
            let shown = ContextJSON(name: name, context: context)
            if printer.isJSON { return try printer.json(shown) }
            printer.details([("name", name), ("current", file.currentContext == name ? "yes" : "no"),
                             ("admin url", context.adminUrl), ("token", redact(context.token)), ("config", store.path)])
        }
    }

    struct DeleteContext: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete", abstract: "Remove a context (and its token) from the config file.")
        @Argument(help: "Context name.") var name: String
        @OptionGroup var config: ConfigFileOption

        func run() async throws {
            let store = try config.store()
            var file = try store.load()
            guard file.contexts.removeValue(forKey: name) != nil else {
                throw CLIError.notFound("No context named '\(name)' in \(store.path)")
            }
            if file.currentContext == name { file.currentContext = nil }
            try store.save(file)
            say("Context '\(name)' deleted")
        }
    }
}

/// A context as printed: the token reduced to its non-secret display prefix.
struct ContextJSON: Encodable {
    var name: String
    var adminUrl: String
    var token: String?

    init(name: String, context: CLIConfig.Context) {
        self.name = name
        self.adminUrl = context.adminUrl
        self.token = context.token.map { _ in redact(context.token) }
    }
}

struct ContextListJSON: Encodable {
    var currentContext: String?
    var contexts: [ContextJSON]
}

/// `tg_admin_abcd…` for a stored token (the public display prefix), `-` for none.
func redact(_ token: String?) -> String {
    guard let token else { return "-" }
    let prefix = token.hasPrefix("tg_admin_") ? String(token.prefix("tg_admin_".count + 4)) : String(token.prefix(4))
    return prefix + "…"
}
