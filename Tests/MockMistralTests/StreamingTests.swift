import Foundation
import MockMistral
import Testing

@Suite struct StreamingTests {
    @Test func sseFramingMatchesTheLiveAPI() async throws {
        try await withMock { (mock, http) async throws in
            let body = Bodies.chat(extra: #""stream":true"#)
            let response = try await http.post("/v1/chat/completions", body)
            #expect(response.status == 200)
            #expect(response.header("content-type") == "text/event-stream")
            // Every event is exactly one `data: …` line followed by a blank line.
            #expect(response.body.hasSuffix("data: [DONE]\n\n"))
            let events = sseEvents(response.body)
            for event in events {
                #expect(event.hasPrefix("data: "))
                #expect(!event.dropFirst(6).contains("\n"))
            }
            #expect(events.last == "data: [DONE]")
            #expect(events.filter { $0 == "data: [DONE]" }.count == 1)

            let chunks = try sseChunks(response.body)
            #expect(chunks.count == 1 + 16 + 1)  // role chunk, one token per chunk, finish chunk
            let ids = Set(chunks.compactMap { $0.string("id") })
            #expect(ids.count == 1 && isHex32(ids.first!))
            for chunk in chunks {
                #expect(chunk.string("object") == "chat.completion.chunk")
                #expect(chunk.string("model") == "mistral-small-latest")
            }
            // First delta: role + empty content.
            let first = try #require(chunks.first?.array("choices")?.first)
            #expect(first.object("delta")?.string("role") == "assistant")
            #expect(first.object("delta")?.string("content") == "")
            // Usage only in the final chunk, which also has the (only) non-null finish_reason.
            for chunk in chunks.dropLast() {
                #expect(chunk["usage"] == nil)
                #expect(chunk.array("choices")?.first?["finish_reason"] is NSNull)
            }
            let last = try #require(chunks.last)
            #expect(last.array("choices")?.first?.string("finish_reason") == "stop")
            let usage = try #require(last.object("usage"))
            #expect(usage.int("prompt_tokens") == 8)
            #expect(usage.int("completion_tokens") == 16)
            #expect(usage.int("total_tokens") == 24)

            // Streamed content equals the non-streamed reply.
            let streamed = chunks.compactMap { $0.array("choices")?.first?.object("delta")?.string("content") }.joined()
            let plain = try await http.post("/v1/chat/completions", Bodies.chat()).json
            #expect(streamed == plain.array("choices")?.first?.object("message")?.string("content"))
            #expect(try mock.usage(forChatBody: body) == MockUsage(promptTokens: 8, completionTokens: 16))
            #expect(mock.requestLog.entries.first?.streamed == true)
            #expect(mock.stats.streamsCompleted == 1)
        }
    }

    @Test func maxTokensCapsTheStream() async throws {
        try await withMock { (_, http) async throws in
            let response = try await http.post("/v1/chat/completions", Bodies.chat(extra: #""stream":true,"max_tokens":5"#))
            let chunks = try sseChunks(response.body)
            let text = chunks.compactMap { $0.array("choices")?.first?.object("delta")?.string("content") }.joined()
            #expect(text == "This is a deterministic reply")
            #expect(chunks.last?.array("choices")?.first?.string("finish_reason") == "length")
            #expect(chunks.last?.object("usage")?.int("completion_tokens") == 5)
        }
    }

    @Test func tokensPerChunkGroupsTokens() async throws {
        try await withMock(MockMistralConfiguration(completionTokens: 10, tokensPerChunk: 4)) { (_, http) async throws in
            let chunks = try sseChunks(try await http.post("/v1/chat/completions", Bodies.chat(extra: #""stream":true"#)).body)
            // role + ceil(10/4) = 3 content chunks + finish
            #expect(chunks.count == 5)
            #expect(chunks[1].array("choices")?.first?.object("delta")?.string("content") == "This is a deterministic")
        }
    }

    @Test func toolCallStreamsInOneDeltaWithFinishAndUsage() async throws {
        try await withMock { (_, http) async throws in
            let body = #"{"model":"mistral-small-latest","stream":true,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{"q":{"type":"string"}}}}}],"tool_choice":"required"}"#
            let chunks = try sseChunks(try await http.post("/v1/chat/completions", body).body)
            #expect(chunks.count == 2)
            let final = try #require(chunks.last?.array("choices")?.first)
            #expect(final.string("finish_reason") == "tool_calls")
            let call = try #require(final.object("delta")?.array("tool_calls")?.first)
            #expect(call.object("function")?.string("arguments") == #"{"q": "mock"}"#)
            #expect(chunks.last?.object("usage") != nil)
        }
    }

    @Test func streamPaddingCanBeTurnedOff() async throws {
        try await withMock(MockMistralConfiguration(streamPadding: false)) { (_, http) async throws in
            let body = try await http.post("/v1/chat/completions", Bodies.chat(extra: #""stream":true"#)).body
            #expect(!body.contains(#""p":"#))
        }
        try await withMock { (_, http) async throws in
            let body = try await http.post("/v1/chat/completions", Bodies.chat(extra: #""stream":true"#)).body
            #expect(body.contains(#""p":"#))
        }
    }

    @Test func fimStreamsLikeChat() async throws {
        try await withMock { (_, http) async throws in
            let body = #"{"model":"codestral-latest","prompt":"def f(","suffix":"):","stream":true,"max_tokens":2}"#
            let response = try await http.post("/v1/fim/completions", body)
            #expect(response.body.hasSuffix("data: [DONE]\n\n"))
            let chunks = try sseChunks(response.body)
            // prompt: 4 + ceil((6 + 2) / 4) = 6
            #expect(chunks.last?.object("usage")?.int("prompt_tokens") == 6)
            #expect(chunks.last?.object("usage")?.int("completion_tokens") == 2)
        }
    }

    @Test func chunkDelayPacesTheStream() async throws {
        try await withMock(MockMistralConfiguration(streamChunkDelay: .milliseconds(40), completionTokens: 5)) { (_, http) async throws in
            let clock = ContinuousClock()
            let start = clock.now
            let response = try await http.post("/v1/chat/completions", Bodies.chat(extra: #""stream":true"#))
            let elapsed = clock.now - start
            // 8 events → 7 gaps of 40 ms.
            #expect(sseEvents(response.body).count == 8)
            #expect(elapsed >= .milliseconds(280))
        }
    }
}
