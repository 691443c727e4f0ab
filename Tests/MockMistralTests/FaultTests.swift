import AsyncHTTPClient
import Foundation
import MockMistral
import NIOCore
import Testing

@Suite struct FaultTests {
    @Test func rateLimitedAnswers429WithRetryAfterAndIsConsumed() async throws {
        try await withMock { (mock, http) async throws in
            mock.inject(.rateLimited(retryAfterSeconds: 7), count: 2)
            for _ in 0..<2 {
                let response = try await http.post("/v1/chat/completions", Bodies.chat())
                #expect(response.status == 429)
                #expect(response.header("retry-after") == "7")
                #expect(response.header("x-ratelimit-remaining-req-minute") == "0")
                #expect(response.body == #"{"object":"error","message":"Rate limit exceeded","type":"rate_limited","param":null,"code":"1300","raw_status_code":429}"#)
            }
            #expect(try await http.post("/v1/chat/completions", Bodies.chat()).status == 200)
            #expect(mock.pendingFaults.isEmpty)
            #expect(mock.requestLog.entries.map(\.fault) == [.rateLimited(retryAfterSeconds: 7), .rateLimited(retryAfterSeconds: 7), nil])
            #expect(mock.stats.faultsApplied == 2)
        }
    }

    @Test func faultsRespectThePathAndAuthentication() async throws {
        try await withMock { (mock, http) async throws in
            mock.inject(.serverError(status: 500), matching: "/v1/embeddings")
            #expect(try await http.post("/v1/chat/completions", Bodies.chat()).status == 200)
            // A request the gateway layer rejects (bad key) does not reach the fault.
            #expect(try await http.post("/v1/embeddings", #"{"model":"mistral-embed","input":"x"}"#, key: nil).status == 401)
            #expect(mock.pendingFaults.count == 1)
            #expect(try await http.post("/v1/embeddings", #"{"model":"mistral-embed","input":"x"}"#).status == 500)
            mock.inject(.serverError(status: 503), matching: "/v1/*")
            #expect(try await http.get("/v1/models").status == 503)
        }
    }

    @Test(arguments: [
        (500, #"{"object":"error","message":"Internal server error","type":"server_error","param":null,"code":null,"raw_status_code":500}"#),
        (503, #"{"object":"error","message":"Service tier capacity exceeded for this model.","type":"invalid_request_error","param":null,"code":null}"#),
    ])
    func serverErrorsUseTheAPIEnvelope(status: Int, body: String) async throws {
        try await withMock { (mock, http) async throws in
            mock.inject(.serverError(status: status))
            let response = try await http.post("/v1/chat/completions", Bodies.chat())
            #expect(response.status == status)
            #expect(response.body == body)
        }
    }

    @Test func badGatewayUsesTheGatewayBody() async throws {
        try await withMock { (mock, http) async throws in
            mock.inject(.serverError(status: 502))
            let response = try await http.post("/v1/chat/completions", Bodies.chat())
            #expect(response.status == 502)
            let json = try response.json
            #expect(json.string("message") == "An invalid response was received from the upstream server")
            #expect(isHex32(json.string("request_id") ?? ""))
        }
    }

    @Test func resetBeforeHeadersDropsTheConnection() async throws {
        try await withMock { (mock, http) async throws in
            mock.inject(.resetBeforeHeaders)
            await #expect(throws: (any Error).self) {
                _ = try await http.post("/v1/chat/completions", Bodies.chat())
            }
            let entry = try #require(mock.requestLog.last)
            #expect(entry.fault == .resetBeforeHeaders)
            #expect(entry.status == nil)
            #expect(mock.stats.requestsByStatus[0] == 1)
            // The server is fine afterwards.
            #expect(try await http.post("/v1/chat/completions", Bodies.chat()).status == 200)
        }
    }

    @Test func resetIsATCPReset() async throws {
        // Below the HTTP client: a raw socket sees ECONNRESET (RST), not an orderly EOF (FIN).
        try await withMock { (mock, http) async throws in
            mock.inject(.resetBeforeHeaders)
            let outcome = try await RawHTTP.exchange(baseURL: http.baseURL, request:
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: \(Bodies.chat().utf8.count)\r\n\r\n\(Bodies.chat())")
            #expect(outcome.received.isEmpty)
            #expect(outcome.reset)
        }
    }

    @Test func disconnectMidStreamSendsExactlyNEvents() async throws {
        try await withMock { (mock, http) async throws in
            mock.inject(.disconnectMidStream(afterChunks: 3))
            // A non-streaming request does not consume a stream fault.
            #expect(try await http.post("/v1/chat/completions", Bodies.chat()).status == 200)
            #expect(mock.pendingFaults.count == 1)

            let result = try await http.stream("/v1/chat/completions", Bodies.chat(extra: #""stream":true"#))
            #expect(result.status == 200)
            #expect(result.error != nil)
            let events = sseEvents(result.received)
            #expect(events.count == 3)
            #expect(!result.received.contains("usage"))
            #expect(!result.received.contains("[DONE]"))
            #expect(mock.requestLog.last?.fault == .disconnectMidStream(afterChunks: 3))
            #expect(mock.stats.streamsCompleted == 0)
        }
    }

    @Test func disconnectMidStreamWorksWhenPaced() async throws {
        try await withMock(MockMistralConfiguration(streamChunkDelay: .milliseconds(5))) { (mock, http) async throws in
            mock.inject(.disconnectMidStream(afterChunks: 5))
            let result = try await http.stream("/v1/chat/completions", Bodies.chat(extra: #""stream":true"#))
            #expect(result.error != nil)
            // The abortive close can overtake the last chunk on a loaded machine; never more than 5.
            #expect((3...5).contains(sseEvents(result.received).count))
        }
    }

    @Test func streamWithoutUsageEndsCleanlyWithoutUsageOrDone() async throws {
        try await withMock { (mock, http) async throws in
            mock.inject(.streamWithoutUsage)
            let result = try await http.stream("/v1/chat/completions", Bodies.chat(extra: #""stream":true"#))
            #expect(result.error == nil)
            #expect(!result.received.contains("[DONE]"))
            #expect(!result.received.contains("\"usage\""))
            let chunks = try sseChunks(result.received)
            #expect(chunks.count == 18)
            #expect(chunks.last?.array("choices")?.first?.string("finish_reason") == "stop")
            // The next stream is normal again.
            let normal = try await http.stream("/v1/chat/completions", Bodies.chat(extra: #""stream":true"#))
            #expect(normal.received.hasSuffix("data: [DONE]\n\n"))
        }
    }

    @Test func slowFirstByteDelaysTheHead() async throws {
        try await withMock { (mock, http) async throws in
            mock.inject(.slowFirstByte(.milliseconds(300)))
            let clock = ContinuousClock()
            let start = clock.now
            let response = try await http.post("/v1/chat/completions", Bodies.chat())
            #expect(clock.now - start >= .milliseconds(300))
            #expect(response.status == 200)
            // Consumed: the next request is not delayed by it.
            _ = try await http.post("/v1/chat/completions", Bodies.chat())
            #expect(mock.pendingFaults.isEmpty)
            #expect(mock.requestLog.entries.map(\.fault) == [.slowFirstByte(.milliseconds(300)), nil])
        }
    }

    @Test func configuredLatencyDelaysEveryResponse() async throws {
        try await withMock(MockMistralConfiguration(latency: .milliseconds(150))) { (_, http) async throws in
            let clock = ContinuousClock()
            let start = clock.now
            #expect(try await http.get("/v1/models").status == 200)
            #expect(clock.now - start >= .milliseconds(150))
        }
    }
}
