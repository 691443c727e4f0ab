import Foundation
import MockMistral
import Testing

@Suite struct OtherEndpointsTests {
    @Test func fimHasTheChatShape() async throws {
        try await withMock { (mock, http) async throws in
            let body = #"{"model":"codestral-latest","prompt":"def add(a, b):","suffix":"\n\nprint(add(1, 2))","stream":false}"#
            let json = try await http.post("/v1/fim/completions", body).json
            #expect(json.string("object") == "chat.completion")
            #expect(json.string("model") == "codestral-latest")
            #expect(json.array("choices")?.first?.object("message")?.string("role") == "assistant")
            // 4 + ceil((14 + 17) / 4) = 12
            #expect(json.object("usage")?.int("prompt_tokens") == 12)
            #expect(try mock.usage(forFIMBody: body) == MockUsage(promptTokens: 12, completionTokens: 16))
        }
    }

    @Test func moderationsRawAndChat() async throws {
        try await withMock { (mock, http) async throws in
            let raw = try await http.post("/v1/moderations", #"{"model":"mistral-moderation-2603","input":["abc","defgh"]}"#).json
            #expect(raw.array("results")?.count == 2)
            #expect(raw.array("results")?.first?.object("categories")?["pii"] as? Bool == false)
            #expect(raw.object("usage")?.int("prompt_tokens") == 3)
            let chat = try await http.post("/v1/chat/moderations", #"{"model":"mistral-moderation-2603","input":[{"role":"user","content":"hello"}]}"#).json
            #expect(chat.array("results")?.count == 1)
            #expect(chat.object("usage")?.int("prompt_tokens") == 6)
            #expect(try mock.usage(path: "/v1/moderations", body: Array(#"{"model":"mistral-moderation-2603","input":"abc"}"#.utf8))?.promptTokens == 1)
        }
    }

    @Test func classifications() async throws {
        try await withMock { (_, http) async throws in
            let raw = try await http.post("/v1/classifications", #"{"model":"ft:classifier:ministral-3b:abc","input":"great product"}"#).json
            #expect(raw.array("results")?.count == 1)
            #expect(raw.object("usage")?.int("prompt_tokens") == 4)
            let chat = try await http.post("/v1/chat/classifications", #"{"model":"ft:classifier:ministral-3b:abc","input":[{"messages":[{"role":"user","content":"a"}]},{"messages":[{"role":"user","content":"b"}]}]}"#).json
            #expect(chat.array("results")?.count == 2)
            #expect(chat.object("usage")?.int("prompt_tokens") == 10)
        }
    }

    @Test func ocrReportsPagesProcessed() async throws {
        try await withMock { (mock, http) async throws in
            let body = #"{"model":"mistral-ocr-latest","document":{"type":"document_url","document_url":"https://example.com/a.pdf"},"pages":[0,1,4]}"#
            let json = try await http.post("/v1/ocr", body).json
            #expect(json.array("pages")?.map { $0.int("index") } == [0, 1, 4])
            #expect(json.object("usage_info")?.int("pages_processed") == 3)
            #expect(json.object("usage_info")?.int("doc_size_bytes") == 25)
            #expect(mock.requestLog.last?.usage?.pagesProcessed == 3)
            let onePage = try await http.post("/v1/ocr", #"{"model":"mistral-ocr-latest","document":{"type":"image_url","image_url":"https://example.com/a.png"}}"#).json
            #expect(onePage.object("usage_info")?.int("pages_processed") == 1)
        }
    }

    @Test func conversationsBillTheHistoryOnAppend() async throws {
        try await withMock(MockMistralConfiguration(completionTokens: 4)) { (mock, http) async throws in
            // "hello" (5 bytes) → 2 + 4 = 6
            let start = try await http.post("/v1/conversations", #"{"model":"mistral-medium-latest","inputs":"hello"}"#).json
            #expect(start.string("object") == "conversation.response")
            let id = try #require(start.string("conversation_id"))
            #expect(id.hasPrefix("conv_"))
            let output = try #require(start.array("outputs")?.first)
            #expect(output.string("type") == "message.output")
            #expect(output.string("content") == "This is a deterministic")
            #expect(start.object("usage")?.int("prompt_tokens") == 6)
            #expect(start.object("usage")?.int("completion_tokens") == 4)
            #expect(start.object("usage")?.int("total_tokens") == 10)

            // Append "again" (5 bytes → 6): history "hello" (6) + reply (23 bytes → 6 + 4 = 10) + 6 = 22.
            let appendBody = #"{"inputs":[{"role":"user","content":"again"}]}"#
            #expect(try mock.usage(path: "/v1/conversations/\(id)", body: Array(appendBody.utf8))?.promptTokens == 22)
            let append = try await http.post("/v1/conversations/\(id)", appendBody).json
            #expect(append.string("conversation_id") == id)
            #expect(append.object("usage")?.int("prompt_tokens") == 22)

            // Restart from the first output forks a new conversation with the history up to it.
            let outputID = try #require(output.string("id"))
            let restart = try await http.post("/v1/conversations/\(id)/restart", #"{"inputs":"x","from_entry_id":"\#(outputID)"}"#).json
            #expect(restart.string("conversation_id") != id)
            #expect(restart.object("usage")?.int("prompt_tokens") == 6 + 10 + 5)

            let unknown = try await http.post("/v1/conversations/conv_nope", appendBody)
            #expect(unknown.status == 404)
        }
    }

    @Test func conversationStreamUsesTypedEvents() async throws {
        try await withMock(MockMistralConfiguration(completionTokens: 3)) { (_, http) async throws in
            let response = try await http.post("/v1/conversations", #"{"model":"mistral-small-latest","inputs":"hi","stream":true}"#)
            #expect(response.header("content-type") == "text/event-stream")
            let events = sseEvents(response.body)
            let types = events.map { $0.split(separator: "\n").first.map(String.init) ?? "" }
            #expect(types == ["event: conversation.response.started", "event: message.output.delta", "event: message.output.delta",
                              "event: message.output.delta", "event: conversation.response.done"])
            let done = try #require(events.last?.split(separator: "\n").last)
            let data = try JSONSerialization.jsonObject(with: Data(done.dropFirst(6).utf8)) as? [String: Any]
            #expect(data?.object("usage")?.int("prompt_tokens") == 5)
            #expect(data?.object("usage")?.int("completion_tokens") == 3)
            #expect(!response.body.contains("[DONE]"))
        }
    }
}
