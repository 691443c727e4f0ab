import ArgumentParser
import Hummingbird
import Logging
import MockMistral

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Serves the mock Mistral API for the local stack, benchmarks and multi-process tests.
/// Prints exactly one line to stdout once listening, `mock-mistral listening on http://HOST:PORT`,
/// which scripts parse (with `--port 0` it carries the port the OS picked).
@main
struct MockMistralCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate-mock-mistral",
        abstract: "A faithful mock of the Mistral AI API, with fault injection and a control API under /_mock/."
    )

    @Option(help: "Address to bind.")
    var host = "127.0.0.1"

    @Option(help: "Port to bind; 0 picks a free port (printed on the listening line).")
    var port = 8090

    @Option(name: .customLong("latency-ms"), help: "Delay before every response head, in milliseconds.")
    var latencyMilliseconds = 0

    @Option(name: .customLong("chunk-delay-ms"), help: "Delay between streamed events, in milliseconds.")
    var chunkDelayMilliseconds = 0

    @Option(name: .customLong("accept-key"), help: "Accepted bearer key (repeatable). Without any, every non-empty key is accepted.")
    var acceptedKeys: [String] = []

    @Option(help: "Tokens in an uncapped reply (the completion tokens of every text reply).")
    var completionTokens = 16

    @Option(help: "Reply tokens per streamed content chunk.")
    var tokensPerChunk = 1

    @Option(help: "422 body style: 'detail' (bare FastAPI form) or 'wrapped' (Mistral envelope).")
    var validationStyle = "detail"

    @Flag(help: "Accept model ids outside the catalog instead of answering 400 invalid_model.")
    var acceptAnyModel = false

    @Flag(help: "Leave out the random 'p' padding field on streamed chunks.")
    var noPadding = false

    @Option(help: "Requests kept in the request log (GET /_mock/requests); 0 turns the log off for benchmarks.")
    var logCapacity = 1_000

    @Flag(help: "Log only errors.")
    var quiet = false

    @Flag(help: "Log every request (slow; for debugging).")
    var logRequests = false

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be 0…65535") }
        guard latencyMilliseconds >= 0, chunkDelayMilliseconds >= 0 else { throw ValidationError("delays must be ≥ 0") }
        guard ValidationErrorStyle(rawValue: validationStyle) != nil else { throw ValidationError("--validation-style is detail or wrapped") }
        guard completionTokens >= 0, tokensPerChunk >= 1 else { throw ValidationError("--completion-tokens ≥ 0, --tokens-per-chunk ≥ 1") }
    }

    func run() async throws {
        var logger = Logger(label: "mock-mistral")
        logger.logLevel = quiet ? .error : (logRequests ? .debug : .info)

        let configuration = MockMistralConfiguration(
            acceptedKeys: Set(acceptedKeys),
            latency: .milliseconds(latencyMilliseconds),
            streamChunkDelay: .milliseconds(chunkDelayMilliseconds),
            completionTokens: completionTokens,
            tokensPerChunk: tokensPerChunk,
            validationErrorStyle: ValidationErrorStyle(rawValue: validationStyle) ?? .detail,
            rejectUnknownModels: !acceptAnyModel,
            streamPadding: !noPadding,
            requestLogCapacity: logCapacity
        )
        let mock = MockMistral(configuration: configuration, logger: logger)
        let host = self.host
        let app = mock.buildApplication(host: host, port: port, logger: logger) { boundPort in
            let shownHost = host.contains(":") ? "[\(host)]" : host
            print("mock-mistral listening on http://\(shownHost):\(boundPort)")
            // stdout is usually a pipe read by a script: flush now, not at exit.
            fflush(nil)
        }
        try await app.runService()
    }
}
