/// A validated chat, agents or FIM completion request, reduced to what the reply and the usage
/// rule depend on.
struct CompletionRequest: Sendable {
    enum Kind: Sendable { case chat, agents, fim }

    enum ReplyKind: Sendable, Equatable {
        case text
        /// `response_format` json_object / json_schema: the content must parse as JSON.
        case json
        /// Forced tool call: function name and its JSON-encoded arguments.
        case toolCall(name: String, arguments: String)
    }

    var kind: Kind
    /// The model echoed in the response (agents: the agent's model, see `agentModel`).
    var model: String
    var promptTokens: Int
    var cachedTokens: Int
    var maxTokens: Int?
    var choices: Int
    var stream: Bool
    var reply: ReplyKind

    /// Agents are created out of band; the mock pretends every agent runs on this model.
    static let agentModel = "mistral-medium-latest"
}

extension CompletionRequest {
    private static let body: [ValidationIssue.Location] = [.key("body")]

    /// Validates a `/v1/chat/completions` (or `/v1/agents/completions`) body like the real API:
    /// schema problems → 422 (all of them at once), then mistral-common's message checks → 400,
    /// then the model id → 400 `invalid_model`.
    static func parseChat(_ document: JSONDocument, agents: Bool, rejectUnknownModels: Bool) throws(RequestFailure) -> CompletionRequest {
        var validator = Validator(document: document)
        guard let object = validator.rootObject() else { throw .validation(validator.issues) }
        let root = document.root

        let model: String?
        if agents {
            model = validator.requiredString("agent_id", in: object, objectValue: root, at: body).map { _ in agentModel }
        } else {
            model = validator.requiredString("model", in: object, objectValue: root, at: body)
        }

        var messages: [JSONValue] = []
        if let value = object["messages"] {
            if let array = validator.array(value, at: body + [.key("messages")]) {
                messages = array
                if array.isEmpty {
                    validator.add(type: "too_short", loc: body + [.key("messages")],
                                  msg: "List should have at least 1 item after validation, not 0", input: .value(value),
                                  ctx: "{\"field_type\":\"List\",\"min_length\":1,\"actual_length\":0}")
                }
                for (index, message) in array.enumerated() {
                    validateMessage(message, index: index, validator: &validator)
                }
            }
        } else {
            validator.missing("messages", in: object, objectValue: root, at: body)
        }

        if !agents {
            validator.optionalNumber("temperature", in: object, at: body, minimum: 0, maximum: 1.5)
            validator.optionalNumber("top_p", in: object, at: body, exclusiveMinimum: 0, maximum: 1)
        }
        let maxTokens = validator.optionalInteger("max_tokens", in: object, at: body, minimum: 0)
        _ = validator.optionalInteger("min_tokens", in: object, at: body, minimum: 0)
        _ = validator.optionalInteger("random_seed", in: object, at: body, minimum: 0)
        let choices = validator.optionalInteger("n", in: object, at: body, minimum: 1) ?? 1
        validator.optionalNumber("presence_penalty", in: object, at: body, minimum: -2, maximum: 2)
        validator.optionalNumber("frequency_penalty", in: object, at: body, minimum: -2, maximum: 2)
        let stream = validator.streamFlag(in: object, at: body)
        let cacheKey = validator.optionalString("prompt_cache_key", in: object, at: body)

        var replyKind = ReplyKind.text
        if let format = object.nonNull("response_format") {
            switch format["type"]?.string {
            case "json_object", "json_schema": replyKind = .json
            case "text", nil: break
            case .some:
                validator.add(type: "enum", loc: body + [.key("response_format"), .key("type")],
                              msg: "Input should be 'text', 'json_object' or 'json_schema'", input: .value(format["type"]!),
                              ctx: "{\"expected\":\"'text', 'json_object' or 'json_schema'\"}")
            }
        }
        let tools = object.nonNull("tools")
        if let tools { _ = validator.array(tools, at: body + [.key("tools")]) }
        if let plan = ToolCallPlanner.forcedCall(tools: tools, toolChoice: object.nonNull("tool_choice"), in: document) {
            replyKind = .toolCall(name: plan.name, arguments: plan.arguments)
        }

        validator.forbidExtraFields(object, allowed: agents ? AllowedFields.agents : AllowedFields.chat, at: body)
        try validator.finish()

        try checkConversationRules(messages)
        guard let model else { fatalError("validated above") }
        if !agents, rejectUnknownModels, !ModelCatalog.isKnown(model) { throw .invalidModel(model) }

        let promptTokens = PromptTokens.messages(messages, in: document) + PromptTokens.tools(tools, in: document)
        return CompletionRequest(
            kind: agents ? .agents : .chat,
            model: model,
            promptTokens: promptTokens,
            cachedTokens: MockUsageRule.cachedTokens(promptTokens: promptTokens, hasPromptCacheKey: cacheKey != nil),
            maxTokens: maxTokens,
            choices: choices,
            stream: stream,
            reply: replyKind
        )
    }

    /// `/v1/fim/completions`: required `model` and `prompt`, optional `suffix`.
    static func parseFIM(_ document: JSONDocument, rejectUnknownModels: Bool) throws(RequestFailure) -> CompletionRequest {
        var validator = Validator(document: document)
        guard let object = validator.rootObject() else { throw .validation(validator.issues) }
        let root = document.root
        let model = validator.requiredString("model", in: object, objectValue: root, at: body)
        let prompt = validator.requiredString("prompt", in: object, objectValue: root, at: body)
        let suffix = validator.optionalString("suffix", in: object, at: body) ?? ""
        validator.optionalNumber("temperature", in: object, at: body, minimum: 0, maximum: 1.5)
        validator.optionalNumber("top_p", in: object, at: body, exclusiveMinimum: 0, maximum: 1)
        let maxTokens = validator.optionalInteger("max_tokens", in: object, at: body, minimum: 0)
        _ = validator.optionalInteger("min_tokens", in: object, at: body, minimum: 0)
        _ = validator.optionalInteger("random_seed", in: object, at: body, minimum: 0)
        let stream = validator.streamFlag(in: object, at: body)
        let cacheKey = validator.optionalString("prompt_cache_key", in: object, at: body)
        validator.forbidExtraFields(object, allowed: AllowedFields.fim, at: body)
        try validator.finish()
        guard let model, let prompt else { fatalError("validated above") }
        if rejectUnknownModels, !ModelCatalog.isKnown(model) { throw .invalidModel(model) }

        let promptTokens = MockUsageRule.tokensPerMessage + MockUsageRule.textTokens(utf8Bytes: prompt.utf8.count + suffix.utf8.count)
        return CompletionRequest(
            kind: .fim,
            model: model,
            promptTokens: promptTokens,
            cachedTokens: MockUsageRule.cachedTokens(promptTokens: promptTokens, hasPromptCacheKey: cacheKey != nil),
            maxTokens: maxTokens,
            choices: 1,
            stream: stream,
            reply: .text
        )
    }

    /// Messages are a union discriminated by `role`; each variant forbids extra fields.
    private static func validateMessage(_ message: JSONValue, index: Int, validator: inout Validator) {
        let loc = body + [.key("messages"), .index(index)]
        guard let object = message.object else {
            validator.add(type: "model_attributes_type", loc: loc,
                          msg: "Input should be a valid dictionary or object to extract fields from", input: .value(message))
            return
        }
        guard let role = object["role"]?.string else {
            validator.add(type: "union_tag_not_found", loc: loc, msg: "Unable to extract tag using discriminator 'role'",
                          input: .value(message), ctx: "{\"discriminator\":\"'role'\"}")
            return
        }
        guard let allowed = AllowedFields.message(role: role) else {
            let expected = "'system', 'user', 'assistant', 'tool'"
            validator.add(type: "union_tag_invalid", loc: loc,
                          msg: "Input tag '\(role)' found using 'role' does not match any of the expected tags: \(expected)",
                          input: .value(message),
                          ctx: "{\"discriminator\":\"'role'\",\"tag\":\(jsonEncodedString(role)),\"expected_tags\":\(jsonEncodedString(expected))}")
            return
        }
        validator.forbidExtraFields(object, allowed: allowed, at: loc + [.key(role)])
    }

    /// mistral-common's serving checks, answered with 400 and the live messages (reference §3.1).
    private static func checkConversationRules(_ messages: [JSONValue]) throws(RequestFailure) {
        for message in messages where message["role"]?.string == "assistant" {
            let content = message["content"]
            let hasContent = content.map { !$0.isNull } ?? false
            let toolCalls = message["tool_calls"]?.array ?? []
            if !hasContent && toolCalls.isEmpty {
                throw .badRequest(message: "Assistant message must have either content or tool_calls, but not none.")
            }
            for call in toolCalls {
                let id = call["id"]?.string ?? "null"
                if !Identifiers.isToolCallID(id) {
                    throw .badRequest(message: "Tool call id was \(id) but must be a-z, A-Z, 0-9, with a length of 9.")
                }
            }
        }
        guard let last = messages.last else { return }
        let role = last["role"]?.string ?? ""
        let isPrefix = last["prefix"]?.bool ?? false
        if role == "user" || role == "tool" || (role == "assistant" && isPrefix) { return }
        throw .badRequest(message: "Expected last role User or Tool (or Assistant with prefix True) for serving but got \(role)")
    }
}
