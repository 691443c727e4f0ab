import MockMistral
import Testing

/// The usage rule as a pure function: no server involved.
@Suite struct UsageRuleTests {
    @Test func textTokensRoundUp() {
        #expect(MockUsageRule.textTokens(utf8Bytes: 0) == 0)
        #expect(MockUsageRule.textTokens(utf8Bytes: 1) == 1)
        #expect(MockUsageRule.textTokens(utf8Bytes: 4) == 1)
        #expect(MockUsageRule.textTokens(utf8Bytes: 5) == 2)
    }

    @Test func chatPromptIsFourPerMessagePlusQuarterBytes() throws {
        let mock = MockMistral()
        let body = #"{"model":"mistral-small-latest","messages":[{"role":"system","content":"12345678"},{"role":"user","content":"123456789"}]}"#
        // (4 + 2) + (4 + 3)
        #expect(try mock.usage(forChatBody: body) == MockUsage(promptTokens: 13, completionTokens: 16))
    }

    @Test func completionIsTheConfiguredLengthCappedByMaxTokens() throws {
        let mock = MockMistral(configuration: MockMistralConfiguration(completionTokens: 7))
        #expect(try mock.usage(forChatBody: Bodies.chat()).completionTokens == 7)
        #expect(try mock.usage(forChatBody: Bodies.chat(extra: #""max_tokens":5"#)).completionTokens == 5)
        #expect(try mock.usage(forChatBody: Bodies.chat(extra: #""max_tokens":50"#)).completionTokens == 7)
        // JSON mode needs at least 5 tokens to close the object.
        let tiny = MockMistral(configuration: MockMistralConfiguration(completionTokens: 2))
        #expect(try tiny.usage(forChatBody: Bodies.chat(extra: #""response_format":{"type":"json_object"}"#)).completionTokens == 5)
    }

    @Test func usageIsDeterministic() throws {
        let body = Bodies.chat(String(repeating: "token ", count: 100), extra: #""n":2"#)
        let first = try MockMistral().usage(forChatBody: body)
        let second = try MockMistral().usage(forChatBody: body)
        #expect(first == second)
        #expect(first.completionTokens == 32)
    }

    @Test func rejectedBodiesThrowWithTheStatus() {
        let mock = MockMistral()
        do {
            _ = try mock.usage(forChatBody: Bodies.chat(extra: #""user":"x""#))
            Issue.record("expected a rejection")
        } catch let rejected as MockRequestRejected {
            #expect(rejected.status == 422)
            #expect(rejected.body.contains("extra_forbidden"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func usageForPathCoversEveryMeteredEndpoint() throws {
        let mock = MockMistral()
        #expect(try mock.usage(path: "/v1/embeddings", body: Array(#"{"model":"mistral-embed","input":["abcd","e"]}"#.utf8)) == MockUsage(promptTokens: 2))
        #expect(try mock.usage(path: "/v1/ocr", body: Array(#"{"model":"mistral-ocr-latest","document":{"type":"document_url","document_url":"u"},"pages":[1,2]}"#.utf8))?.pagesProcessed == 2)
        #expect(try mock.usage(path: "/v1/agents/completions", body: Array(#"{"agent_id":"a","messages":[{"role":"user","content":"hi"}]}"#.utf8)) == MockUsage(promptTokens: 5, completionTokens: 16))
        #expect(throws: MockRequestRejected.self) { try mock.usage(path: "/v1/unknown", body: [UInt8]()) }
    }
}
