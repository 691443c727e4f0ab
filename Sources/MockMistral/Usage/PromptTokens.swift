/// Implements the prompt side of `MockUsageRule` on parsed request bodies.
enum PromptTokens {
    static func messages(_ messages: [JSONValue], in document: JSONDocument) -> Int {
        var total = 0
        for message in messages {
            total += MockUsageRule.tokensPerMessage + MockUsageRule.textTokens(utf8Bytes: messageBytes(message, in: document))
        }
        return total
    }

    static func messageBytes(_ message: JSONValue, in document: JSONDocument) -> Int {
        guard let object = message.object else { return compactBytes(message, in: document) }
        var bytes = contentBytes(object["content"], in: document)
        if let toolCalls = object.nonNull("tool_calls")?.array {
            for call in toolCalls {
                guard let function = call["function"]?.object else { continue }
                bytes += function["name"]?.string?.utf8.count ?? 0
                if let arguments = function["arguments"] {
                    bytes += arguments.string?.utf8.count ?? compactBytes(arguments, in: document)
                }
            }
        }
        return bytes
    }

    static func contentBytes(_ content: JSONValue?, in document: JSONDocument) -> Int {
        guard let content else { return 0 }
        switch content.kind {
        case .null: return 0
        case .string(let text): return text.utf8.count
        case .array(let chunks):
            var bytes = 0
            for chunk in chunks {
                if let text = chunk["text"]?.string {
                    bytes += text.utf8.count
                } else if chunk["type"]?.string == "thinking", let inner = chunk["thinking"]?.array {
                    bytes += contentBytes(JSONValue(kind: .array(inner), range: chunk.range), in: document)
                } else {
                    bytes += compactBytes(chunk, in: document)
                }
            }
            return bytes
        default:
            return compactBytes(content, in: document)
        }
    }

    static func tools(_ tools: JSONValue?, in document: JSONDocument) -> Int {
        guard let tools, let array = tools.array, !array.isEmpty else { return 0 }
        return MockUsageRule.textTokens(utf8Bytes: compactBytes(tools, in: document))
    }

    /// Size of `value` written as compact JSON with strings counted by their decoded UTF-8 bytes
    /// (+ 2 quotes), so the count does not change when a gateway re-serialises the body with other
    /// whitespace or escaping. Numbers count their characters as sent.
    static func compactBytes(_ value: JSONValue, in document: JSONDocument) -> Int {
        switch value.kind {
        case .null: return 4
        case .bool(let flag): return flag ? 4 : 5
        case .number: return document.rawCount(value)
        case .string(let text): return text.utf8.count + 2
        case .array(let elements):
            return 2 + max(0, elements.count - 1) + elements.reduce(0) { $0 + compactBytes($1, in: document) }
        case .object(let object):
            let members = object.members
            return 2 + max(0, members.count - 1)
                + members.reduce(0) { $0 + $1.key.utf8.count + 3 + compactBytes($1.value, in: document) }
        }
    }

    /// Embeddings/moderation/classification inputs: a string or a list of strings.
    static func inputs(_ strings: [String]) -> Int {
        strings.reduce(0) { $0 + max(1, MockUsageRule.textTokens(utf8Bytes: $1.utf8.count)) }
    }
}
