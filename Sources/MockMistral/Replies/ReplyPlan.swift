/// The reply the mock gives to a completion request: which tokens, which finish reason, and the
/// resulting usage. Everything derives from the request and `completionTokens`, so usage is
/// reproducible by `MockMistral.usage(…)`.
struct ReplyPlan: Sendable {
    struct ToolCall: Sendable {
        var id: String
        var name: String
        var arguments: String
    }

    /// Content tokens of one choice (concatenated they form `message.content`).
    var tokens: [String]
    var toolCall: ToolCall?
    var completionTokensPerChoice: Int
    var finishReason: String
    var usage: MockUsage

    var content: String { tokens.joined() }

    init(request: CompletionRequest, completionTokens: Int) {
        let natural: Int
        var plannedCall: (name: String, arguments: String)?
        switch request.reply {
        case .text:
            natural = completionTokens
        case .json:
            natural = max(MockUsageRule.minimumJSONReplyTokens, completionTokens)
        case .toolCall(let name, let arguments):
            natural = max(1, MockUsageRule.textTokens(utf8Bytes: name.utf8.count + arguments.utf8.count))
            plannedCall = (name, arguments)
        }
        let emitted = min(natural, request.maxTokens ?? natural)
        let capped = emitted < natural

        switch request.reply {
        case .text:
            tokens = ReplyText.textTokens(count: emitted)
        case .json:
            tokens = Array(ReplyText.jsonTokens(total: natural).prefix(emitted))
        case .toolCall:
            tokens = []
        }
        if let plannedCall, !capped {
            toolCall = ToolCall(id: Identifiers.toolCallID(), name: plannedCall.name, arguments: plannedCall.arguments)
        } else {
            toolCall = nil
        }
        completionTokensPerChoice = emitted
        finishReason = capped ? "length" : (plannedCall != nil ? "tool_calls" : "stop")
        usage = MockUsage(
            promptTokens: request.promptTokens,
            completionTokens: emitted * request.choices,
            cachedTokens: request.cachedTokens
        )
    }
}

/// The canned reply text, one entry per token. Fixed words (no quotes or backslashes) so the
/// same tokens also work inside the JSON-mode reply.
enum ReplyText {
    private static let words: [String] = [
        "This", " is", " a", " deterministic", " reply", " from", " the", " Tollgate", " mock", " Mistral", " server", ".",
    ]
    private static let cycleStart = " This"

    static func textToken(_ index: Int) -> String {
        let position = index % words.count
        if position == 0 && index > 0 { return cycleStart }
        return words[position]
    }

    static func textTokens(count: Int) -> [String] {
        var tokens: [String] = []
        tokens.reserveCapacity(count)
        for index in 0..<count { tokens.append(textToken(index)) }
        return tokens
    }

    /// `{"reply": "This is a …"}` in exactly `total` (≥ 5) tokens.
    static func jsonTokens(total: Int) -> [String] {
        let wordCount = max(0, total - MockUsageRule.minimumJSONReplyTokens)
        return ["{\"", "reply", "\":", " \""] + textTokens(count: wordCount) + ["\"}"]
    }
}
