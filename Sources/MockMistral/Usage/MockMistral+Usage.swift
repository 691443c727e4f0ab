import NIOCore

/// The mock would reject this body; `status` and `body` are what it would answer.
public struct MockRequestRejected: Error, Sendable, CustomStringConvertible {
    public let status: Int
    public let body: String
    public var description: String { "mock would answer \(status): \(body)" }
}

/// Usage prediction: what the mock will bill for a body, computed by the same code that answers
/// requests (see `MockUsageRule` for the rule in words). Uses the current configuration
/// (`completionTokens`), so predict with the configuration the request will be served under.
extension MockMistral {
    public func usage(forChatBody body: some Sequence<UInt8>) throws -> MockUsage {
        try usage(path: "/v1/chat/completions", body: body) ?? MockUsage(promptTokens: 0)
    }

    public func usage(forFIMBody body: some Sequence<UInt8>) throws -> MockUsage {
        try usage(path: "/v1/fim/completions", body: body) ?? MockUsage(promptTokens: 0)
    }

    public func usage(forEmbeddingsBody body: some Sequence<UInt8>) throws -> MockUsage {
        try usage(path: "/v1/embeddings", body: body) ?? MockUsage(promptTokens: 0)
    }

    public func usage(forChatBody body: String) throws -> MockUsage { try usage(forChatBody: Array(body.utf8)) }
    public func usage(forFIMBody body: String) throws -> MockUsage { try usage(forFIMBody: Array(body.utf8)) }
    public func usage(forEmbeddingsBody body: String) throws -> MockUsage { try usage(forEmbeddingsBody: Array(body.utf8)) }

    /// Usage for a POST to any implemented path (`/v1/ocr` reports `pagesProcessed`); nil for
    /// paths that report no usage. Conversation appends read, but do not change, the stored history.
    /// - Throws: `MockRequestRejected` when the mock would answer with an error.
    public func usage(path: String, body: some Sequence<UInt8>) throws -> MockUsage? {
        guard case .route(let route) = Route.match(method: .post, path: path) else {
            throw MockRequestRejected(status: 404, body: "no POST endpoint at \(path)")
        }
        let bytes = Array(body)
        let configuration = self.configuration
        let context = EndpointContext(configuration: configuration, conversations: conversations)
        do {
            let document: JSONDocument
            do {
                document = try JSONDocument(bytes: bytes)
            } catch {
                let (status, buffer) = ErrorResponses.invalidJSON(error, source: bytes, style: configuration.validationErrorStyle)
                throw RequestFailureWithBody(status: status, body: buffer)
            }
            return try context.handle(route, document: document, persist: false).usage
        } catch let failure as RequestFailure {
            let (status, buffer) = ErrorResponses.render(failure, source: bytes, style: configuration.validationErrorStyle)
            throw MockRequestRejected(status: status, body: String(buffer: buffer))
        } catch let failure as RequestFailureWithBody {
            throw MockRequestRejected(status: failure.status, body: String(buffer: failure.body))
        }
    }
}

private struct RequestFailureWithBody: Error {
    var status: Int
    var body: ByteBuffer
}
