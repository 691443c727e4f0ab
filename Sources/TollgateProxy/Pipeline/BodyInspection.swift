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

    /// The first `model` a response names: agents answer with the model they ran on at the top
    /// level, conversations inside each output entry.
    static func answeredModel(in body: ByteBuffer) -> String? {
        firstModel(in: body.getString(at: body.readerIndex, length: body.readableBytes) ?? "")
    }

    static func firstModel(in text: String) -> String? {
        guard let range = text.range(of: "\"model\":\"") else { return nil }
        let rest = text[range.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    /// Sets `completion_args.max_tokens` on a conversation request (creating `completion_args`
    /// when absent). The body has passed the duplicate-key check, so re-serialising it keeps
    /// its meaning; conversation bodies are small.
    static func settingCompletionArgsMaxTokens(_ body: ByteBuffer, to value: Int) throws -> ByteBuffer {
        guard var object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] else {
            throw ProxyError.badRequest("invalid_json", "The request body is not a JSON object.")
        }
        var arguments = object["completion_args"] as? [String: Any] ?? [:]
        arguments["max_tokens"] = value
        object["completion_args"] = arguments
        return ByteBuffer(data: try JSONSerialization.data(withJSONObject: object))
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
        if model == nil, let text = chunk.getString(at: chunk.readerIndex, length: chunk.readableBytes) {
            model = BodyInspection.firstModel(in: text)
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
