import Hummingbird
import NIOCore

/// Request context that keeps the connection's channel: the connection-level faults (reset before
/// headers, disconnect mid-stream) act on the socket itself, which a plain context cannot reach.
struct MockRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        channel = source.channel
    }
}

/// Routes every request into `MockMistral.respond`.
struct MockResponder: HTTPResponder {
    let mock: MockMistral

    func respond(to request: Request, context: MockRequestContext) async throws -> Response {
        try await mock.respond(to: request, context: context)
    }
}
