import NIOCore

/// The events of one streamed response, split so faults can cut or alter the ending.
struct StreamScript: Sendable {
    /// Everything before the usage-bearing part (role chunk, content chunks).
    var events: [ByteBuffer]
    /// The normal ending: the finish chunk with usage, then `data: [DONE]`.
    var ending: [ByteBuffer]
    /// The ending a `streamWithoutUsage` fault sends: finish chunk without usage, no `[DONE]`.
    var endingWithoutUsage: [ByteBuffer]
}

/// Serialises chat/FIM/agents completions the way the live API does (key order included:
/// reference §4.1 and §5).
struct CompletionRenderer {
    let id: String
    let created: Int
    let model: String
    let plan: ReplyPlan
    let choices: Int
    let padding: Bool

    // MARK: Non-streaming

    func jsonBody() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(384 + plan.content.utf8.count * choices)
        buffer.writeLiteral("{\"id\":")
        buffer.writeJSONString(id)
        buffer.writeLiteral(",\"created\":")
        buffer.writeJSONInt(created)
        buffer.writeLiteral(",\"model\":")
        buffer.writeJSONString(model)
        buffer.writeLiteral(",\"usage\":")
        writeUsage(into: &buffer)
        buffer.writeLiteral(",\"object\":\"chat.completion\",\"choices\":[")
        let content = plan.content
        for index in 0..<choices {
            if index > 0 { buffer.writeLiteral(",") }
            buffer.writeLiteral("{\"index\":")
            buffer.writeJSONInt(index)
            buffer.writeLiteral(",\"finish_reason\":")
            buffer.writeJSONString(plan.finishReason)
            buffer.writeLiteral(",\"message\":{\"role\":\"assistant\",\"tool_calls\":")
            if let call = plan.toolCall {
                buffer.writeLiteral("[")
                writeToolCall(call, into: &buffer)
                buffer.writeLiteral("]")
            } else {
                buffer.writeLiteral("null")
            }
            buffer.writeLiteral(",\"content\":")
            buffer.writeJSONString(content)
            buffer.writeLiteral("}}")
        }
        buffer.writeLiteral("]}")
        return buffer
    }

    // MARK: Streaming

    func streamScript(tokensPerChunk: Int) -> StreamScript {
        var events: [ByteBuffer] = []
        let perChunk = max(1, tokensPerChunk)
        events.reserveCapacity(2 + plan.tokens.count / perChunk)
        events.append(event(delta: { $0.writeLiteral("{\"role\":\"assistant\",\"content\":\"\"}") }, finishReason: nil, usage: false, padIndex: nil))

        var start = 0
        while start < plan.tokens.count {
            let end = min(start + perChunk, plan.tokens.count)
            let text = plan.tokens[start..<end].joined()
            events.append(event(delta: { buffer in
                buffer.writeLiteral("{\"content\":")
                buffer.writeJSONString(text)
                buffer.writeLiteral("}")
            }, finishReason: nil, usage: false, padIndex: events.count))
            start = end
        }

        // Mistral sends a whole tool call in one delta, together with finish_reason and usage (§5.4);
        // a text reply ends with an empty content delta carrying finish_reason and usage (§5.3).
        let finalDelta: (inout ByteBuffer) -> Void
        if let call = plan.toolCall {
            finalDelta = { buffer in
                buffer.writeLiteral("{\"content\":null,\"tool_calls\":[")
                writeToolCall(call, into: &buffer)
                buffer.writeLiteral("]}")
            }
        } else {
            finalDelta = { $0.writeLiteral("{\"content\":\"\"}") }
        }
        let finalIndex = events.count
        return StreamScript(
            events: events,
            ending: [event(delta: finalDelta, finishReason: plan.finishReason, usage: true, padIndex: finalIndex), Self.done],
            endingWithoutUsage: [event(delta: finalDelta, finishReason: plan.finishReason, usage: false, padIndex: finalIndex)]
        )
    }

    static let done: ByteBuffer = ByteBuffer(string: "data: [DONE]\n\n")

    private func event(delta: (inout ByteBuffer) -> Void, finishReason: String?, usage: Bool, padIndex: Int?) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(256)
        buffer.writeLiteral("data: {\"id\":")
        buffer.writeJSONString(id)
        buffer.writeLiteral(",\"object\":\"chat.completion.chunk\",\"created\":")
        buffer.writeJSONInt(created)
        buffer.writeLiteral(",\"model\":")
        buffer.writeJSONString(model)
        buffer.writeLiteral(",\"choices\":[")
        for index in 0..<choices {
            if index > 0 { buffer.writeLiteral(",") }
            buffer.writeLiteral("{\"index\":")
            buffer.writeJSONInt(index)
            buffer.writeLiteral(",\"delta\":")
            delta(&buffer)
            buffer.writeLiteral(",\"finish_reason\":")
            buffer.writeJSONOptionalString(finishReason)
            buffer.writeLiteral("}")
        }
        buffer.writeLiteral("]")
        if usage {
            buffer.writeLiteral(",\"usage\":")
            writeUsage(into: &buffer)
        }
        if padding, let padIndex {
            buffer.writeLiteral(",\"p\":\"")
            buffer.writeSubstring(Padding.text(for: padIndex))
            buffer.writeLiteral("\"")
        }
        buffer.writeLiteral("}\n\n")
        return buffer
    }

    // MARK: Parts

    private func writeUsage(into buffer: inout ByteBuffer) {
        buffer.writeLiteral("{\"prompt_tokens\":")
        buffer.writeJSONInt(plan.usage.promptTokens)
        buffer.writeLiteral(",\"total_tokens\":")
        buffer.writeJSONInt(plan.usage.totalTokens)
        buffer.writeLiteral(",\"completion_tokens\":")
        buffer.writeJSONInt(plan.usage.completionTokens)
        buffer.writeLiteral(",\"prompt_tokens_details\":{\"cached_tokens\":")
        buffer.writeJSONInt(plan.usage.cachedTokens)
        buffer.writeLiteral("},\"service_tier\":\"standard\"}")
    }

    private func writeToolCall(_ call: ReplyPlan.ToolCall, into buffer: inout ByteBuffer) {
        buffer.writeLiteral("{\"id\":")
        buffer.writeJSONString(call.id)
        buffer.writeLiteral(",\"type\":\"function\",\"function\":{\"name\":")
        buffer.writeJSONString(call.name)
        buffer.writeLiteral(",\"arguments\":")
        buffer.writeJSONString(call.arguments)
        buffer.writeLiteral("},\"index\":0}")
    }
}

/// The `"p"` side-channel padding of live streams: random-looking length, harmless content.
enum Padding {
    private static let alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    private static let prefixes: [Substring] = (1...alphabet.count).map { alphabet.prefix($0) }

    static func text(for index: Int) -> Substring {
        prefixes[(index &* 7 &+ 3) % prefixes.count]
    }
}
