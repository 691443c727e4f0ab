import MockMistral
import Testing

@Suite struct RequestLogTests {
    @Test func logCapturesEverythingAboutTheRequest() async throws {
        try await withMock { (mock, http) async throws in
            let body = Bodies.chat()
            _ = try await http.send(.POST, "/v1/chat/completions?trace=1", body: body, key: "sk-abc",
                                    headers: [("X-Tollgate-Request", "r-1"), ("X-Multi", "a"), ("X-Multi", "b")])
            let entry = try #require(mock.requestLog.last)
            #expect(entry.sequence == 1)
            #expect(entry.method == .post)
            #expect(entry.path == "/v1/chat/completions")
            #expect(entry.query == "trace=1")
            #expect(entry.apiKey == "sk-abc")
            #expect(entry.header("authorization") == "Bearer sk-abc")
            #expect(entry.header("x-tollgate-request") == "r-1")
            #expect(entry.headers.filter { $0.name.canonicalName == "x-multi" }.map(\.value) == ["a", "b"])
            #expect(entry.header("content-type") == "application/json")
            #expect(entry.bodyText == body)
            #expect(entry.bodyBytes == Array(body.utf8))
            #expect(entry.status == 200)
            #expect(entry.usage == MockUsage(promptTokens: 8, completionTokens: 16))
            #expect(!entry.streamed)
        }
    }

    @Test func clearKeepsSequenceNumbersGoing() async throws {
        try await withMock { (mock, http) async throws in
            _ = try await http.get("/v1/models")
            _ = try await http.get("/v1/models")
            #expect(mock.requestLog.count == 2)
            mock.requestLog.clear()
            #expect(mock.requestLog.entries.isEmpty)
            _ = try await http.get("/v1/models/mistral-small-latest")
            #expect(mock.requestLog.entries.map(\.sequence) == [3])
            #expect(mock.requestLog.entries(path: "/v1/models/mistral-small-latest").count == 1)
            #expect(mock.stats.requestsTotal == 3)
        }
    }

    @Test func logIsBounded() async throws {
        try await withMock(MockMistralConfiguration(requestLogCapacity: 5)) { (mock, http) async throws in
            for _ in 0..<12 { _ = try await http.get("/v1/models/codestral-latest") }
            #expect(mock.requestLog.entries.map(\.sequence) == [8, 9, 10, 11, 12])
            #expect(mock.stats.requestsTotal == 12)
        }
    }

    @Test func controlCallsAreNotLogged() async throws {
        try await withMock { (mock, http) async throws in
            _ = try await http.get("/_mock/stats")
            _ = try await http.get("/_mock/requests")
            #expect(mock.requestLog.entries.isEmpty)
            #expect(mock.stats.requestsTotal == 0)
        }
    }
}
