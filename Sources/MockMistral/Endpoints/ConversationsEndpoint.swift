import NIOCore

/// `POST /v1/conversations`, `/v1/conversations/{id}` (append), `/v1/conversations/{id}/restart`
/// (reference §2 and §5.6). Non-streaming answers carry `usage`; streams use typed events and put
/// usage on `conversation.response.done`.
extension EndpointContext {
    private struct ConversationInput {
        var entries: [ConversationStore.Entry]
        var maxTokens: Int?
        var stream: Bool
        var store: Bool
    }

    func conversation(_ route: Route, document: JSONDocument, persist: Bool) throws(RequestFailure) -> EndpointResult {
        let body: [ValidationIssue.Location] = [.key("body")]
        var validator = Validator(document: document)
        guard let object = validator.rootObject() else { throw .validation(validator.issues) }
        let input = parseInputs(object, document: document, validator: &validator)

        var conversation: ConversationStore.Conversation
        var history: [ConversationStore.Entry]
        switch route {
        case .startConversation:
            let model = validator.optionalString("model", in: object, at: body)
            let agentID = validator.optionalString("agent_id", in: object, at: body)
            if model == nil && agentID == nil {
                validator.add(type: "missing", loc: body + [.key("model")], msg: "Field required", input: .value(document.root))
            }
            let instructions = validator.optionalString("instructions", in: object, at: body)
            try validator.finish()
            if let model { try checkModel(model) }
            conversation = .init(model: model ?? CompletionRequest.agentModel, agentID: agentID,
                                 instructionsBytes: instructions?.utf8.count, entries: [])
            history = []
        case .appendConversation(let id):
            try validator.finish()
            guard let stored = conversations.conversation(id) else { throw .notFound(message: "Conversation \(id) not found") }
            conversation = stored
            history = stored.entries
        case .restartConversation(let id):
            let fromEntry = validator.requiredString("from_entry_id", in: object, objectValue: document.root, at: body)
            try validator.finish()
            guard let stored = conversations.conversation(id) else { throw .notFound(message: "Conversation \(id) not found") }
            guard let fromEntry, let cut = stored.entries.firstIndex(where: { $0.id == fromEntry }) else {
                throw .notFound(message: "Entry \(fromEntry ?? "") not found in conversation \(id)")
            }
            conversation = stored
            history = Array(stored.entries[...cut])
        default:
            preconditionFailure("not a conversations route")
        }

        let allEntries = history + input.entries
        var promptTokens = allEntries.reduce(0) {
            $0 + MockUsageRule.tokensPerMessage + MockUsageRule.textTokens(utf8Bytes: $1.bytes)
        }
        if let instructions = conversation.instructionsBytes {
            promptTokens += MockUsageRule.tokensPerMessage + MockUsageRule.textTokens(utf8Bytes: instructions)
        }
        let request = CompletionRequest(kind: .chat, model: conversation.model, promptTokens: promptTokens, cachedTokens: 0,
                                        maxTokens: input.maxTokens, choices: 1, stream: input.stream, reply: .text)
        let plan = ReplyPlan(request: request, completionTokens: configuration.completionTokens)
        let content = plan.content
        let outputID = "msg_" + Identifiers.hex32()

        // A restart forks: the answer belongs to a new conversation id.
        let conversationID: String
        if case .appendConversation(let id) = route { conversationID = id } else { conversationID = "conv_" + Identifiers.hex32() }
        if input.store && persist {
            conversation.entries = allEntries + [.init(id: outputID, bytes: content.utf8.count)]
            conversations.store(conversation, id: conversationID)
        }

        let renderer = ConversationRenderer(conversationID: conversationID, outputID: outputID, model: conversation.model,
                                            agentID: conversation.agentID, plan: plan)
        if input.stream {
            return EndpointResult(body: .stream(renderer.streamScript(tokensPerChunk: configuration.tokensPerChunk)), usage: plan.usage)
        }
        return .json(renderer.jsonBody(), usage: plan.usage)
    }

    /// `inputs`: a string (one user message) or a list of entries (`message.input` with `content`,
    /// `function.result` with `result`).
    private func parseInputs(_ object: JSONObject, document: JSONDocument, validator: inout Validator) -> ConversationInput {
        let body: [ValidationIssue.Location] = [.key("body")]
        var entries: [ConversationStore.Entry] = []
        if let inputs = object["inputs"] {
            if let text = inputs.string {
                entries.append(.init(id: "msg_" + Identifiers.hex32(), bytes: text.utf8.count))
            } else if let list = validator.array(inputs, at: body + [.key("inputs")]) {
                for item in list {
                    let bytes = item["result"]?.string?.utf8.count ?? PromptTokens.contentBytes(item["content"], in: document)
                    entries.append(.init(id: item["id"]?.string ?? "msg_" + Identifiers.hex32(), bytes: bytes))
                }
            }
        } else {
            validator.missing("inputs", in: object, objectValue: document.root, at: body)
        }
        var maxTokens: Int?
        if let args = object.nonNull("completion_args")?.object {
            maxTokens = validator.optionalInteger("max_tokens", in: args, at: body + [.key("completion_args")], minimum: 0)
        }
        let stream = validator.streamFlag(in: object, at: body)
        let store = validator.optionalBool("store", in: object, at: body) ?? true
        return ConversationInput(entries: entries, maxTokens: maxTokens, stream: stream, store: store)
    }
}

/// Serialises conversation responses and their typed event streams.
struct ConversationRenderer {
    let conversationID: String
    let outputID: String
    let model: String
    let agentID: String?
    let plan: ReplyPlan

    func jsonBody() -> ByteBuffer {
        let now = WallClock.iso8601()
        var buffer = ByteBuffer()
        buffer.writeLiteral("{\"object\":\"conversation.response\",\"conversation_id\":")
        buffer.writeJSONString(conversationID)
        buffer.writeLiteral(",\"outputs\":[{\"object\":\"entry\",\"type\":\"message.output\",\"created_at\":")
        buffer.writeJSONString(now)
        buffer.writeLiteral(",\"completed_at\":")
        buffer.writeJSONString(now)
        buffer.writeLiteral(",\"agent_id\":")
        buffer.writeJSONOptionalString(agentID)
        buffer.writeLiteral(",\"model\":")
        buffer.writeJSONString(model)
        buffer.writeLiteral(",\"id\":")
        buffer.writeJSONString(outputID)
        buffer.writeLiteral(",\"role\":\"assistant\",\"content\":")
        buffer.writeJSONString(plan.content)
        buffer.writeLiteral("}],\"usage\":")
        writeUsage(into: &buffer)
        buffer.writeLiteral("}")
        return buffer
    }

    func streamScript(tokensPerChunk: Int) -> StreamScript {
        let now = WallClock.iso8601()
        var events: [ByteBuffer] = []
        events.append(event("conversation.response.started") { buffer in
            buffer.writeLiteral("{\"type\":\"conversation.response.started\",\"conversation_id\":")
            buffer.writeJSONString(conversationID)
            buffer.writeLiteral(",\"created_at\":")
            buffer.writeJSONString(now)
            buffer.writeLiteral("}")
        })
        let perChunk = max(1, tokensPerChunk)
        var start = 0
        while start < plan.tokens.count {
            let end = min(start + perChunk, plan.tokens.count)
            let text = plan.tokens[start..<end].joined()
            events.append(event("message.output.delta") { buffer in
                buffer.writeLiteral("{\"type\":\"message.output.delta\",\"output_index\":0,\"id\":")
                buffer.writeJSONString(outputID)
                buffer.writeLiteral(",\"content_index\":0,\"content\":")
                buffer.writeJSONString(text)
                buffer.writeLiteral(",\"created_at\":")
                buffer.writeJSONString(now)
                buffer.writeLiteral(",\"model\":")
                buffer.writeJSONString(model)
                buffer.writeLiteral(",\"agent_id\":")
                buffer.writeJSONOptionalString(agentID)
                buffer.writeLiteral(",\"role\":\"assistant\"}")
            })
            start = end
        }
        let done = event("conversation.response.done") { buffer in
            buffer.writeLiteral("{\"type\":\"conversation.response.done\",\"usage\":")
            writeUsage(into: &buffer)
            buffer.writeLiteral(",\"created_at\":")
            buffer.writeJSONString(now)
            buffer.writeLiteral("}")
        }
        // Typed streams have no [DONE] sentinel; without usage the stream simply stops after the deltas.
        return StreamScript(events: events, ending: [done], endingWithoutUsage: [])
    }

    private func event(_ type: StaticString, data: (inout ByteBuffer) -> Void) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeLiteral("event: ")
        buffer.writeStaticString(type)
        buffer.writeLiteral("\ndata: ")
        data(&buffer)
        buffer.writeLiteral("\n\n")
        return buffer
    }

    private func writeUsage(into buffer: inout ByteBuffer) {
        buffer.writeLiteral("{\"prompt_tokens\":")
        buffer.writeJSONInt(plan.usage.promptTokens)
        buffer.writeLiteral(",\"completion_tokens\":")
        buffer.writeJSONInt(plan.usage.completionTokens)
        buffer.writeLiteral(",\"total_tokens\":")
        buffer.writeJSONInt(plan.usage.totalTokens)
        buffer.writeLiteral(",\"connector_tokens\":null,\"connectors\":null}")
    }
}
