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

    /// The number of pages an OCR request names (`"pages": [0, 2, 5]`), or nil when it names none.
    /// OCR bodies are small (documents travel by URL or as one base64 string), so Foundation is fine here.
    static func requestedPageCount(_ body: ByteBuffer) throws -> Int? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] else { return nil }
        guard let pages = object["pages"], !(pages is NSNull) else { return nil }
        guard let list = pages as? [Any] else {
            throw ProxyError.badRequest("invalid_field", "'pages' must be a list of page numbers.")
        }
        return list.count
    }

    /// The top-level `model` a response names (agents answer with the model they ran on).
    static func answeredModel(in body: ByteBuffer) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])?["model"] as? String
    }

    static func usage(in body: ByteBuffer) -> Usage? {
        UsageExtractor.usage(fromJSON: body)
    }
}

/// Scans a relayed SSE stream for the final `usage` and counts the completion text delivered.
struct StreamMeter: Sendable {
    private var scanner = SSEUsageScanner()
    /// The `model` of the first event (every chunk repeats it), for requests priced on the answer.
    private(set) var model: String?

    mutating func feed(_ chunk: ByteBuffer) {
        if model == nil, let text = chunk.getString(at: chunk.readerIndex, length: chunk.readableBytes),
           let range = text.range(of: "\"model\":\"") {
            let rest = text[range.upperBound...]
            if let end = rest.firstIndex(of: "\"") { model = String(rest[..<end]) }
        }
        _ = scanner.feed(chunk)
    }

    var usage: Usage? { scanner.usage }

    /// What to charge when the client left early: the prompt's bound and at most one token per
    /// delivered byte of completion text, never more than `max_tokens`.
    func estimate(maxCompletion: Int, worstCase: Usage) -> Usage {
        Usage(promptTokens: worstCase.promptTokens, completionTokens: min(maxCompletion, scanner.completionTextBytes))
    }
}
