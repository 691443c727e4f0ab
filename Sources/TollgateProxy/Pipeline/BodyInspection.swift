import Foundation
import NIOCore
import TollgateDomain

/// What the pipeline needs from a request body. (Interim implementation over JSONSerialization;
/// replaced by the single-pass scanner in Request/ once it lands.)
struct InspectedBody: Sendable {
    var model: String?
    var stream: Bool
    var maxTokens: Int?
    var choices: Int
    var promptTokenUpperBound: Int
}

enum BodyInspection {
    static func inspect(_ body: ByteBuffer) throws -> InspectedBody {
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] else {
            throw ProxyError.badRequest("invalid_json", "The request body is not a JSON object.")
        }
        var maxTokens: Int?
        if let value = object["max_tokens"], !(value is NSNull) {
            guard let number = value as? Int, number >= 0 else {
                throw ProxyError.badRequest("invalid_max_tokens", "'max_tokens' must be a non-negative integer.")
            }
            maxTokens = number
        }
        return InspectedBody(model: object["model"] as? String, stream: object["stream"] as? Bool ?? false,
                             maxTokens: maxTokens, choices: object["n"] as? Int ?? 1,
                             promptTokenUpperBound: body.readableBytes)
    }

    static func settingMaxTokens(_ body: ByteBuffer, to value: Int) -> ByteBuffer {
        guard var object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] else { return body }
        object["max_tokens"] = value
        return (try? JSONSerialization.data(withJSONObject: object)).map { ByteBuffer(data: $0) } ?? body
    }

    static func usage(in body: ByteBuffer) -> Usage? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
              let usage = object["usage"] as? [String: Any] else { return nil }
        let details = usage["prompt_tokens_details"] as? [String: Any]
        return Usage(promptTokens: usage["prompt_tokens"] as? Int ?? 0, completionTokens: usage["completion_tokens"] as? Int ?? 0,
                     cachedTokens: details?["cached_tokens"] as? Int ?? 0)
    }
}

/// Scans a relayed SSE stream for `usage` and counts the completion text delivered.
struct StreamMeter: Sendable {
    private var pending = ""
    private(set) var usage: Usage?
    private(set) var deliveredBytes = 0

    mutating func feed(_ chunk: ByteBuffer) {
        pending += String(buffer: chunk)
        while let range = pending.range(of: "\n\n") {
            let event = String(pending[..<range.lowerBound])
            pending.removeSubrange(..<range.upperBound)
            for line in event.split(separator: "\n") where line.hasPrefix("data:") {
                let payload = line.dropFirst(5).trimmingCharacters(in: .whitespaces)
                guard payload != "[DONE]", let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any]
                else { continue }
                if let choices = object["choices"] as? [[String: Any]] {
                    for choice in choices {
                        if let text = (choice["delta"] as? [String: Any])?["content"] as? String { deliveredBytes += text.utf8.count }
                    }
                }
                if let u = object["usage"] as? [String: Any] {
                    usage = Usage(promptTokens: u["prompt_tokens"] as? Int ?? 0, completionTokens: u["completion_tokens"] as? Int ?? 0)
                }
            }
        }
    }

    /// What to charge when the client left early: the prompt's bound and at most one token per
    /// delivered byte of completion.
    func estimate(maxCompletion: Int, worstCase: Usage) -> Usage {
        Usage(promptTokens: worstCase.promptTokens, completionTokens: min(maxCompletion, deliveredBytes))
    }
}
