import NIOCore

/// `POST /v1/moderations`, `/v1/chat/moderations`, `/v1/classifications`, `/v1/chat/classifications`.
/// Every input is judged harmless with small fixed scores; usage is prompt-only (reference §4.5).
extension EndpointContext {
    private static let moderationCategories = [
        "sexual", "hate_and_discrimination", "violence_and_threats", "dangerous_and_criminal_content",
        "selfharm", "health", "financial", "law", "pii",
    ]

    func moderation(_ route: Route, document: JSONDocument) throws(RequestFailure) -> EndpointResult {
        let chat = route == .chatModerations
        let (model, items, promptTokens) = try parseClassifierInput(document, chat: chat)
        let usage = MockUsage(promptTokens: promptTokens)
        var buffer = ByteBuffer()
        buffer.writeLiteral("{\"id\":")
        buffer.writeJSONString(Identifiers.hex32())
        buffer.writeLiteral(",\"usage\":")
        writeModerationUsage(usage, into: &buffer)
        buffer.writeLiteral(",\"model\":")
        buffer.writeJSONString(model)
        buffer.writeLiteral(",\"results\":[")
        for index in 0..<items {
            if index > 0 { buffer.writeLiteral(",") }
            buffer.writeLiteral("{\"category_scores\":{")
            for (position, category) in Self.moderationCategories.enumerated() {
                if position > 0 { buffer.writeLiteral(",") }
                buffer.writeJSONString(category)
                buffer.writeLiteral(":0.0001")
            }
            buffer.writeLiteral("},\"categories\":{")
            for (position, category) in Self.moderationCategories.enumerated() {
                if position > 0 { buffer.writeLiteral(",") }
                buffer.writeJSONString(category)
                buffer.writeLiteral(":false")
            }
            buffer.writeLiteral("}}")
        }
        buffer.writeLiteral("]}")
        return .json(buffer, usage: usage)
    }

    func classification(_ route: Route, document: JSONDocument) throws(RequestFailure) -> EndpointResult {
        let chat = route == .chatClassifications
        let (model, items, promptTokens) = try parseClassifierInput(document, chat: chat)
        let usage = MockUsage(promptTokens: promptTokens)
        var buffer = ByteBuffer()
        buffer.writeLiteral("{\"id\":")
        buffer.writeJSONString(Identifiers.hex32())
        buffer.writeLiteral(",\"usage\":")
        writeModerationUsage(usage, into: &buffer)
        buffer.writeLiteral(",\"model\":")
        buffer.writeJSONString(model)
        buffer.writeLiteral(",\"results\":[")
        for index in 0..<items {
            if index > 0 { buffer.writeLiteral(",") }
            buffer.writeLiteral("{\"label\":{\"scores\":{\"positive\":0.9,\"negative\":0.1}}}")
        }
        buffer.writeLiteral("]}")
        return .json(buffer, usage: usage)
    }

    private func writeModerationUsage(_ usage: MockUsage, into buffer: inout ByteBuffer) {
        buffer.writeLiteral("{\"prompt_audio_seconds\":null,\"prompt_tokens\":")
        buffer.writeJSONInt(usage.promptTokens)
        buffer.writeLiteral(",\"total_tokens\":")
        buffer.writeJSONInt(usage.totalTokens)
        buffer.writeLiteral(",\"completion_tokens\":0,\"request_count\":1,\"prompt_token_details\":null}")
    }

    /// Returns the model, the number of results to produce, and the prompt tokens.
    /// Raw: `input` is `string | string[]`. Chat moderation: `input` is one conversation (list of
    /// messages) or a list of them. Chat classification: `{messages}` or a list of `{messages}`.
    private func parseClassifierInput(_ document: JSONDocument, chat: Bool) throws(RequestFailure) -> (String, Int, Int) {
        let body: [ValidationIssue.Location] = [.key("body")]
        var validator = Validator(document: document)
        guard let object = validator.rootObject() else { throw .validation(validator.issues) }
        let model = validator.requiredString("model", in: object, objectValue: document.root, at: body)
        var items = 0
        var promptTokens = 0
        if !chat {
            if let inputs = Self.stringOrStrings("input", in: object, root: document.root, validator: &validator) {
                items = inputs.count
                promptTokens = PromptTokens.inputs(inputs)
            }
        } else if let input = object["input"] {
            for conversation in conversations(in: input) {
                guard let messages = conversation.array ?? conversation["messages"]?.array else {
                    validator.add(type: "list_type", loc: body + [.key("input")], msg: "Input should be a valid list", input: .value(input))
                    break
                }
                items += 1
                promptTokens += PromptTokens.messages(messages, in: document)
            }
        } else {
            validator.missing("input", in: object, objectValue: document.root, at: body)
        }
        try validator.finish()
        guard let model else { fatalError("validated above") }
        try checkModel(model)
        return (model, items, promptTokens)
    }

    /// Splits a chat input into conversations: `[msg, msg]` is one, `[[msg], [msg]]` or
    /// `[{messages}, {messages}]` are several, `{messages}` is one.
    private func conversations(in input: JSONValue) -> [JSONValue] {
        if input.object != nil { return [input] }
        guard let array = input.array else { return [input] }
        if let first = array.first, first.array != nil || first["messages"] != nil { return array }
        return [input]
    }
}
