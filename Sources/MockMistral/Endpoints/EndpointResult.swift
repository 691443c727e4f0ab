import HTTPTypes
import NIOCore

/// What an endpoint decided to answer, before the responder adds shared headers, latency and faults.
struct EndpointResult: Sendable {
    enum Body: Sendable {
        case json(ByteBuffer)
        case stream(StreamScript)
    }

    var status: HTTPResponse.Status = .ok
    var body: Body
    /// Usage reported in the body; recorded in the log and the rate-limit query cost.
    var usage: MockUsage?

    static func json(_ buffer: ByteBuffer, usage: MockUsage? = nil) -> EndpointResult {
        EndpointResult(body: .json(buffer), usage: usage)
    }
}

/// Inputs every endpoint handler needs.
struct EndpointContext: Sendable {
    var configuration: MockMistralConfiguration
    var conversations: ConversationStore

    func checkModel(_ model: String) throws(RequestFailure) {
        if configuration.rejectUnknownModels, !ModelCatalog.isKnown(model) { throw .invalidModel(model) }
    }
}
