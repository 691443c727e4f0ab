import Foundation
import MockMistral
import Testing

@Suite struct ChatCompletionTests {
    /// system "You are helpful." (16 bytes → 4 tokens) + user "Hello, world!" (13 bytes → 4 tokens),
    /// each + 4 per message: 16 prompt tokens; 16 completion tokens by default.
    static let body = #"{"model":"mistral-small-latest","messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"Hello, world!"}]}"#

    @Test func responseHasTheLiveShapeAndTheDocumentedUsage() async throws {
        try await withMock { (mock, http) async throws in
            let response = try await http.post("/v1/chat/completions", Self.body)
            #expect(response.status == 200)
            #expect(response.header("content-type") == "application/json")
            let json = try response.json
            #expect(isHex32(json.string("id") ?? ""))
            #expect(json.string("object") == "chat.completion")
            #expect(json.string("model") == "mistral-small-latest")
            #expect((json.int("created") ?? 0) > 1_700_000_000)

            let choice = try #require(json.array("choices")?.first)
            #expect(choice.int("index") == 0)
            #expect(choice.string("finish_reason") == "stop")
            let message = try #require(choice.object("message"))
            #expect(message.string("role") == "assistant")
            #expect(message["tool_calls"] is NSNull)
            #expect(message.string("content") == "This is a deterministic reply from the Tollgate mock Mistral server. This is a deterministic")

            let usage = try #require(json.object("usage"))
            #expect(usage.int("prompt_tokens") == 16)
            #expect(usage.int("completion_tokens") == 16)
            #expect(usage.int("total_tokens") == 32)
            #expect(usage.object("prompt_tokens_details")?.int("cached_tokens") == 0)

            // The public rule predicts exactly what the response reported, and the log agrees.
            let predicted = try mock.usage(forChatBody: Self.body)
            #expect(predicted == MockUsage(promptTokens: 16, completionTokens: 16))
            #expect(mock.requestLog.last?.usage == predicted)
        }
    }

    @Test func usageRuleCountsUTF8BytesOfDecodedStrings() async throws {
        try await withMock { (mock, http) async throws in
            // "héllo\n" decodes to 7 UTF-8 bytes → 2 tokens (+4). The escaped source is longer.
            let body = #"{"model":"mistral-large-latest","messages":[{"role":"user","content":"h\u00e9llo\n"}]}"#
            let json = try await http.post("/v1/chat/completions", body).json
            #expect(json.object("usage")?.int("prompt_tokens") == 6)
            #expect(try mock.usage(forChatBody: body).promptTokens == 6)
        }
    }

    @Test func contentArraysToolCallsAndToolsCountTowardsThePrompt() throws {
        let mock = MockMistral()
        // user: text chunk "abcd" (4 bytes) → 1 + 4 = 5
        // assistant: tool call name "f" + arguments "{}" (3 bytes) → 1 + 4 = 5
        // tool: "ok" (2 bytes) → 1 + 4 = 5
        // tools array raw bytes: 61 → 16
        let tools = #"[{"type":"function","function":{"name":"f","parameters":{}}}]"#
        #expect(tools.utf8.count == 61)
        let body = """
        {"model":"mistral-small-latest","tools":\(tools),"messages":[
        {"role":"user","content":[{"type":"text","text":"abcd"}]},
        {"role":"assistant","content":null,"tool_calls":[{"id":"abcDEF123","type":"function","function":{"name":"f","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"abcDEF123","content":"ok"}]}
        """
        #expect(try mock.usage(forChatBody: body).promptTokens == 5 + 5 + 5 + 16)

        // Re-serialised with other whitespace and escapes (as a gateway might), the usage is the same.
        let reformatted = body
            .replacingOccurrences(of: #"{"type":"function","function":{"name":"f","parameters":{}}}"#,
                                  with: #"{ "type" : "function", "function" : { "name" : "\u0066", "parameters" : { } } }"#)
        #expect(reformatted != body)
        #expect(try mock.usage(forChatBody: reformatted) == mock.usage(forChatBody: body))
    }

    static let fullReply = "This is a deterministic reply from the Tollgate mock Mistral server. This is a deterministic"

    @Test(arguments: [(3, 3, "length", "This is a"), (16, 16, "stop", fullReply), (100, 16, "stop", fullReply), (0, 0, "length", "")])
    func maxTokensCapsTheCompletion(maxTokens: Int, expected: Int, finishReason: String, text: String) async throws {
        try await withMock { (mock, http) async throws in
            let body = Bodies.chat(extra: #""max_tokens":\#(maxTokens)"#)
            let json = try await http.post("/v1/chat/completions", body).json
            let choice = try #require(json.array("choices")?.first)
            #expect(choice.string("finish_reason") == finishReason)
            #expect(json.object("usage")?.int("completion_tokens") == expected)
            #expect(choice.object("message")?.string("content") == text)
            #expect(try mock.usage(forChatBody: body).completionTokens == expected)
        }
    }

    @Test func completionLengthFollowsConfiguration() async throws {
        try await withMock(MockMistralConfiguration(completionTokens: 40)) { (mock, http) async throws in
            let json = try await http.post("/v1/chat/completions", Bodies.chat()).json
            #expect(json.object("usage")?.int("completion_tokens") == 40)
            mock.updateConfiguration { $0.completionTokens = 2 }
            let again = try await http.post("/v1/chat/completions", Bodies.chat()).json
            #expect(again.object("usage")?.int("completion_tokens") == 2)
            #expect(again.array("choices")?.first?.object("message")?.string("content") == "This is")
        }
    }

    @Test func nChoicesBillTheCompletionPerChoiceAndThePromptOnce() async throws {
        try await withMock { (_, http) async throws in
            let json = try await http.post("/v1/chat/completions", Bodies.chat(extra: #""n":3,"max_tokens":4"#)).json
            #expect(json.array("choices")?.map { $0.int("index") } == [0, 1, 2])
            #expect(json.object("usage")?.int("prompt_tokens") == 8)
            #expect(json.object("usage")?.int("completion_tokens") == 12)
        }
    }

    @Test func promptCacheKeyReportsCachedTokensInBlocksOf64() async throws {
        try await withMock { (mock, http) async throws in
            let long = String(repeating: "a", count: 600)  // 150 + 4 = 154 prompt tokens
            let body = Bodies.chat(long, extra: #""prompt_cache_key":"k1""#)
            let json = try await http.post("/v1/chat/completions", body).json
            #expect(json.object("usage")?.int("prompt_tokens") == 154)
            #expect(json.object("usage")?.object("prompt_tokens_details")?.int("cached_tokens") == 128)
            #expect(try mock.usage(forChatBody: body).cachedTokens == 128)
        }
    }

    @Test func forcedToolChoiceReturnsAToolCall() async throws {
        try await withMock { (mock, http) async throws in
            let body = """
            {"model":"mistral-large-latest","messages":[{"role":"user","content":"Weather in Paris?"}],
             "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather",
               "parameters":{"type":"object","properties":{"location":{"type":"string"},"days":{"type":"integer"},
               "unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["location"]}}}],
             "tool_choice":"any"}
            """
            let json = try await http.post("/v1/chat/completions", body).json
            let choice = try #require(json.array("choices")?.first)
            #expect(choice.string("finish_reason") == "tool_calls")
            let call = try #require(choice.object("message")?.array("tool_calls")?.first)
            let id = try #require(call.string("id"))
            #expect(id.count == 9 && id.allSatisfy { $0.isLetter || $0.isNumber } && id.allSatisfy(\.isASCII))
            let function = try #require(call.object("function"))
            #expect(function.string("name") == "get_weather")
            let arguments = try #require(function.string("arguments"))  // a JSON *string*
            #expect(arguments == #"{"location": "mock", "days": 1, "unit": "celsius"}"#)
            let decoded = try JSONSerialization.jsonObject(with: Data(arguments.utf8)) as? [String: Any]
            #expect(decoded?["location"] as? String == "mock")
            // Completion tokens: ceil((11 + 50) / 4) = 16.
            #expect(json.object("usage")?.int("completion_tokens") == 16)
            #expect(try mock.usage(forChatBody: body).completionTokens == 16)
        }
    }

    @Test func autoToolChoiceAnswersWithText() async throws {
        try await withMock { (_, http) async throws in
            let body = #"{"model":"mistral-small-latest","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]}"#
            let choice = try #require(try await http.post("/v1/chat/completions", body).json.array("choices")?.first)
            #expect(choice.string("finish_reason") == "stop")
            #expect(choice.object("message")?["tool_calls"] is NSNull)
        }
    }

    @Test func namedToolChoicePicksThatTool() async throws {
        try await withMock { (_, http) async throws in
            let body = #"{"model":"mistral-small-latest","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a","parameters":{}}},{"type":"function","function":{"name":"b","parameters":{}}}],"tool_choice":{"type":"function","function":{"name":"b"}}}"#
            let call = try await http.post("/v1/chat/completions", body).json.array("choices")?.first?.object("message")?.array("tool_calls")?.first
            #expect(call?.object("function")?.string("name") == "b")
            #expect(call?.object("function")?.string("arguments") == "{}")
        }
    }

    @Test(arguments: ["json_object", "json_schema"])
    func jsonModeContentIsValidJSON(type: String) async throws {
        try await withMock { (_, http) async throws in
            let body = Bodies.chat(extra: #""response_format":{"type":"\#(type)"}"#)
            let json = try await http.post("/v1/chat/completions", body).json
            let content = try #require(json.array("choices")?.first?.object("message")?.string("content"))
            let parsed = try JSONSerialization.jsonObject(with: Data(content.utf8)) as? [String: Any]
            #expect(parsed?["reply"] is String)
            #expect(json.object("usage")?.int("completion_tokens") == 16)
        }
    }

    @Test func agentsCompletionsRequireAgentIDAndAnswerAsChat() async throws {
        try await withMock { (_, http) async throws in
            let ok = try await http.post("/v1/agents/completions", #"{"agent_id":"ag_123","messages":[{"role":"user","content":"hi"}]}"#)
            #expect(ok.status == 200)
            let json = try ok.json
            #expect(json.string("object") == "chat.completion")
            #expect(json.object("usage")?.int("prompt_tokens") == 5)
            // `model` is not an agents field: the strict schema rejects it.
            let bad = try await http.post("/v1/agents/completions", #"{"model":"mistral-small-latest","messages":[{"role":"user","content":"hi"}]}"#)
            #expect(bad.status == 422)
            #expect(bad.body.contains(#""loc":["body","agent_id"]"#))
            #expect(bad.body.contains(#""loc":["body","model"]"#))
        }
    }
}
