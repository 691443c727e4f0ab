import Foundation
import NIOCore
import TollgateDomain

/// The pipeline's view of request and response bodies, over the single-pass scanners in
/// Request/ and Metering/ (no tree is built, no Foundation JSON on the hot path).
enum BodyInspection {
    static let inspector = RequestInspector()

    static func inspect(_ body: ByteBuffer) throws -> InspectedRequest {
        do {
            return try inspector.inspect(body)
        } catch {
            throw ProxyError.badRequest(error.code, error.message)
        }
    }

    /// The body with `max_tokens` set (bytes otherwise untouched), when the client did not set it.
    static func settingMaxTokens(_ body: ByteBuffer, to value: Int, inspected: InspectedRequest) -> ByteBuffer {
        MaxTokensInjection.inject(maxTokens: value, into: body, inspected: inspected) ?? body
    }

    static func usage(in body: ByteBuffer) -> Usage? {
        UsageExtractor.usage(fromJSON: body)
    }
}

/// Scans a relayed SSE stream for the final `usage` and counts the completion text delivered.
struct StreamMeter: Sendable {
    private var scanner = SSEUsageScanner()

    mutating func feed(_ chunk: ByteBuffer) { _ = scanner.feed(chunk) }

    var usage: Usage? { scanner.usage }

    /// What to charge when the client left early: the prompt's bound and at most one token per
    /// delivered byte of completion text, never more than `max_tokens`.
    func estimate(maxCompletion: Int, worstCase: Usage) -> Usage {
        Usage(promptTokens: worstCase.promptTokens, completionTokens: min(maxCompletion, scanner.completionTextBytes))
    }
}
