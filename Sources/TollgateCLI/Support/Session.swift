import ArgumentParser
import AsyncHTTPClient
import Foundation
import HTTPTypes
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime
import TollgateAdminAPI

typealias Schemas = Components.Schemas

enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case table, json
}

/// `--config`, shared by the commands that only touch the config file (`context …`).
struct ConfigFileOption: ParsableArguments {
    @Option(name: .customLong("config"),
            help: ArgumentHelp("Config file (default: $TOLLGATE_CONFIG, else ~/.config/tollgate/config.json).",
                               valueName: "path"))
    var path: String?

    func store() throws -> ConfigStore { try ConfigStore.resolve(explicit: path, environment: .current) }
}

/// Connection and output options of every command that talks to the admin API.
struct ConnectionOptions: ParsableArguments {
    @OptionGroup var server: ServerOptions

    @Option(name: [.short, .customLong("output")],
            help: ArgumentHelp("table (for people) or json (for scripts; the API's field names).", valueName: "format"))
    var output: OutputFormat = .table

    func withSession<T>(_ body: (Session) async throws -> T) async throws -> T {
        try await server.withSession(format: output, body)
    }
}

/// Where the admin API is and which token to use.
/// Precedence for the URL and the token: flag > environment variable > context.
struct ServerOptions: ParsableArguments {
    @Option(name: .customLong("admin-url"),
            help: ArgumentHelp("Admin API URL (default: $TOLLGATE_ADMIN_URL, else the context's, else http://127.0.0.1:8081).",
                               valueName: "url"))
    var adminURL: String?

    @Option(help: ArgumentHelp("Admin token (default: $TOLLGATE_ADMIN_TOKEN, else the context's). Prefer those: argv shows in ps and shell history.",
                               valueName: "token"))
    var token: String?

    @Option(name: .customLong("context"),
            help: ArgumentHelp("Use this context instead of the current one (default: $TOLLGATE_CONTEXT, else the current context).",
                               valueName: "name"))
    var contextName: String?

    @OptionGroup var config: ConfigFileOption

    static let defaultAdminURL = "http://127.0.0.1:8081"

    struct Resolved {
        var adminURL: URL
        var token: String?
    }

    func resolve() throws -> Resolved {
        let env = CLIEnvironment.current
        var context: CLIConfig.Context?
        let store = try config.store()
        let explicitName = contextName ?? env.variables["TOLLGATE_CONTEXT"].flatMap { $0.isEmpty ? nil : $0 }
        // The file is only read when something may come from it.
        let needsFile = explicitName != nil || adminURL == nil && env.variables["TOLLGATE_ADMIN_URL"] == nil
            || token == nil && env.variables["TOLLGATE_ADMIN_TOKEN"] == nil
        if needsFile {
            let file = try store.load()
            if let explicitName {
                guard let found = file.contexts[explicitName] else {
                    throw CLIError.usage("No context named '\(explicitName)' in \(store.path) (see: tollgate context list)")
                }
                context = found
            } else if let current = file.currentContext {
                context = file.contexts[current]
            }
        }
        func nonEmpty(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }
        let urlText = nonEmpty(adminURL) ?? nonEmpty(env.variables["TOLLGATE_ADMIN_URL"]) ?? nonEmpty(context?.adminUrl)
            ?? Self.defaultAdminURL
        let token = nonEmpty(token) ?? nonEmpty(env.variables["TOLLGATE_ADMIN_TOKEN"]) ?? nonEmpty(context?.token)
        let url = try Self.normalize(urlText)
        if token != nil, url.scheme == "http", let host = url.host, !Self.isLoopback(host) {
            warn("warning: sending the admin token over plain http to \(host); use https")
        }
        return Resolved(adminURL: url, token: token)
    }

    /// Accepts `http(s)://host[:port][/prefix]`; a trailing `/` or `/v1` is dropped (operation paths start with /v1).
    static func normalize(_ text: String) throws -> URL {
        var trimmed = text.trimmingCharacters(in: .whitespaces)
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        if trimmed.hasSuffix("/v1") { trimmed.removeLast(3) }
        guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty
        else {
            throw CLIError.usage("Invalid admin URL '\(text)': expected http(s)://host[:port]")
        }
        return url
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
    }

    /// Runs `body` with a client for the admin API; the HTTP client is shut down afterwards.
    func withSession<T>(format: OutputFormat, _ body: (Session) async throws -> T) async throws -> T {
        let resolved = try resolve()
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(120))
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.redirectConfiguration = .disallow
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        let recorder = ResponseRecorder()
        let client = Client(
            serverURL: resolved.adminURL,
            transport: AsyncHTTPClientTransport(configuration: .init(client: http, timeout: .minutes(5))),
            middlewares: [AdminClientMiddleware(token: resolved.token, recorder: recorder)])
        let session = Session(client: client, adminURL: resolved.adminURL.absoluteString, hasToken: resolved.token != nil,
                              format: format, recorder: recorder)
        let result: Result<T, any Error>
        do { result = .success(try await body(session)) } catch { result = .failure(error) }
        try? await http.shutdown()
        switch result {
        case .success(let value): return value
        case .failure(let error as ClientError): throw classify(error, adminURL: session.adminURL)
        case .failure(let error): throw error
        }
    }
}

/// Remembers the last response's `x-request-id`, so errors can quote it.
final class ResponseRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var requestID: String?

    func record(_ id: String?) { lock.lock(); requestID = id; lock.unlock() }
    var lastRequestID: String? { lock.lock(); defer { lock.unlock() }; return requestID }
}

/// Adds the bearer token and a user agent; records the request id of each response.
struct AdminClientMiddleware: ClientMiddleware {
    let token: String?
    let recorder: ResponseRecorder

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        if let token { request.headerFields[.authorization] = "Bearer \(token)" }
        request.headerFields[.userAgent] = "tollgate-cli"
        let (response, responseBody) = try await next(request, body, baseURL)
        recorder.record(response.headerFields[HTTPField.Name("x-request-id")!])
        return (response, responseBody)
    }
}

/// One command's connection to the admin API, with the lookups commands share (whoami, tenant by
/// slug, key or credential by name).
final class Session {
    let client: Client
    let adminURL: String
    let hasToken: Bool
    let format: OutputFormat
    let recorder: ResponseRecorder
    private var me: Schemas.AdminToken?
    private var tenants: [String: Schemas.Tenant] = [:]

    init(client: Client, adminURL: String, hasToken: Bool, format: OutputFormat, recorder: ResponseRecorder) {
        self.client = client; self.adminURL = adminURL; self.hasToken = hasToken; self.format = format
        self.recorder = recorder
    }

    var printer: Printer { Printer(format: format) }

    /// The error for a problem response.
    func failure(_ status: Int, _ response: Components.Responses.Problem) -> CLIError {
        switch response.body {
        case .applicationProblemJson(let problem):
            var error = CLIError.api(status: status, problem: problem, requestID: recorder.lastRequestID)
            if status == 401, !hasToken {
                error.message += "; no admin token configured: set TOLLGATE_ADMIN_TOKEN, --token or a context (tollgate context set)"
            }
            return error
        }
    }

    // MARK: Shared lookups

    func whoami() async throws -> Schemas.AdminToken {
        if let me { return me }
        switch try await client.whoami() {
        case .ok(let ok):
            let token = try ok.body.json
            me = token
            return token
        case .default(let status, let problem):
            throw failure(status, problem)
        }
    }

    /// The tenant id for `--tenant` (an id or a slug); without it, the token's own tenant.
    func tenantID(_ reference: String?) async throws -> String {
        if let reference, !reference.isEmpty {
            if let uuid = UUID(uuidString: reference) { return uuid.uuidString.lowercased() }
            return try await tenantBySlug(reference).id
        }
        let me = try await whoami()
        guard let own = me.tenantId else {
            throw CLIError.usage("--tenant is required with a platform-admin token (a tenant id or slug)")
        }
        return own
    }

    /// The tenant's own id when the token is tenant-scoped, else nil (platform admins).
    func ownTenantID() async throws -> String? { try await whoami().tenantId }

    func tenantBySlug(_ slug: String) async throws -> Schemas.Tenant {
        var cursor: String?
        repeat {
            switch try await client.listTenants(query: .init(limit: 200, cursor: cursor)) {
            case .ok(let ok):
                let page = try ok.body.json
                if let match = page.data.first(where: { $0.slug == slug }) {
                    tenants[match.id] = match
                    return match
                }
                cursor = page.nextCursor
            case .default(let status, let problem):
                throw failure(status, problem)
            }
        } while cursor != nil
        throw CLIError.notFound("No tenant with slug '\(slug)'")
    }

    func tenant(_ id: String) async throws -> Schemas.Tenant {
        if let cached = tenants[id] { return cached }
        switch try await client.getTenant(path: .init(tenantId: id)) {
        case .ok(let ok):
            let tenant = try ok.body.json
            tenants[id] = tenant
            return tenant
        case .default(let status, let problem):
            throw failure(status, problem)
        }
    }

    /// A key by id or exact name.
    func keyID(_ reference: String, tenantID: String) async throws -> String {
        if let uuid = UUID(uuidString: reference) { return uuid.uuidString.lowercased() }
        var matches: [Schemas.Key] = []
        var cursor: String?
        repeat {
            switch try await client.listKeys(path: .init(tenantId: tenantID),
                                             query: .init(limit: 200, cursor: cursor, name: reference)) {
            case .ok(let ok):
                let page = try ok.body.json
                matches += page.data.filter { $0.name == reference }
                cursor = page.nextCursor
            case .default(let status, let problem):
                throw failure(status, problem)
            }
        } while cursor != nil
        return try single(matches.map(\.id), what: "key", reference: reference)
    }

    /// A credential by id or exact name.
    func credentialID(_ reference: String, tenantID: String) async throws -> String {
        if let uuid = UUID(uuidString: reference) { return uuid.uuidString.lowercased() }
        var matches: [String] = []
        var cursor: String?
        repeat {
            switch try await client.listCredentials(path: .init(tenantId: tenantID), query: .init(limit: 200, cursor: cursor)) {
            case .ok(let ok):
                let page = try ok.body.json
                matches += page.data.filter { $0.name == reference }.map(\.id)
                cursor = page.nextCursor
            case .default(let status, let problem):
                throw failure(status, problem)
            }
        } while cursor != nil
        return try single(matches, what: "credential", reference: reference)
    }

    private func single(_ ids: [String], what: String, reference: String) throws -> String {
        guard let first = ids.first else { throw CLIError.notFound("No \(what) named '\(reference)'") }
        guard ids.count == 1 else {
            throw CLIError.usage("\(ids.count) \(what)s are named '\(reference)'; use the id (one of \(ids.joined(separator: ", ")))")
        }
        return first
    }
}

/// `--limit`, `--cursor` and `--all` of list commands.
struct PageOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Page size, 1-200 (server default 50).", valueName: "n"))
    var limit: Int?
    @Option(help: ArgumentHelp("Continue after this cursor (the previous page's nextCursor).", valueName: "cursor"))
    var cursor: String?
    @Flag(help: "Follow every page and print them all.")
    var all = false

    func validate() throws {
        if let limit, !(1...200).contains(limit) { throw ValidationError("--limit must be between 1 and 200") }
        if all, cursor != nil { throw ValidationError("--all and --cursor cannot be combined") }
    }

    /// Fetches one page, or every page with `--all`.
    func collect<Item>(_ fetch: (_ limit: Int?, _ cursor: String?) async throws -> ([Item], String?)) async throws
        -> (items: [Item], nextCursor: String?) {
        guard all else { return try await fetch(limit, cursor) }
        var items: [Item] = []
        var next: String?
        repeat {
            let page = try await fetch(limit ?? 200, next)
            items += page.0
            next = page.1
        } while next != nil
        return (items, nil)
    }
}
