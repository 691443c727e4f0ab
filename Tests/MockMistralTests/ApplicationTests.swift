import AsyncHTTPClient
import Hummingbird
import HummingbirdTesting
import MockMistral
import NIOCore
import Testing

@Suite struct ApplicationTests {
    @Test func buildApplicationWorksWithHummingbirdTesting() async throws {
        let mock = MockMistral()
        let app = mock.buildApplication()
        try await app.test(.live) { client in
            let response = try await client.execute(
                uri: "/v1/chat/completions", method: .post,
                headers: [.authorization: "Bearer k", .contentType: "application/json"],
                body: ByteBuffer(string: Bodies.chat())
            )
            #expect(response.status == .ok)
            #expect(String(buffer: response.body).contains("\"object\":\"chat.completion\""))
        }
        #expect(mock.requestLog.count == 1)
    }

    @Test func manyConcurrentRequestsAreAllServedAndCounted() async throws {
        try await withMock { (mock, http) async throws in
            let count = 300
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<count {
                    group.addTask {
                        let body = index % 3 == 0 ? Bodies.chat(extra: #""stream":true"#) : Bodies.chat()
                        return try await http.post("/v1/chat/completions", body).status
                    }
                }
                var statuses: [Int] = []
                for try await status in group { statuses.append(status) }
                #expect(statuses.count == count && statuses.allSatisfy { $0 == 200 })
            }
            #expect(mock.stats.requestsTotal == count)
            #expect(mock.requestLog.count == count)
            #expect(Set(mock.requestLog.entries.map(\.sequence)).count == count)
            #expect(mock.stats.streamsCompleted == count / 3)
        }
    }

    @Test func startAndStopFreeThePort() async throws {
        let mock = MockMistral()
        let server = try await mock.start()
        #expect(server.port > 0)
        #expect(server.baseURL == "http://127.0.0.1:\(server.port)")
        let response = try await MockHTTP(baseURL: server.baseURL).get("/v1/models")
        #expect(response.status == 200)
        await server.stop()
        // Connection refused right away (AsyncHTTPClient would keep retrying until its deadline).
        await #expect(throws: RawHTTP.Failure.self) {
            _ = try await RawHTTP.exchange(baseURL: server.baseURL, request: "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        }
    }
}
