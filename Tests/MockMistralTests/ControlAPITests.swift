import Foundation
import MockMistral
import Testing

@Suite struct ControlAPITests {
    @Test func faultsCanBeInjectedOverHTTP() async throws {
        try await withMock { (mock, http) async throws in
            let injected = try await http.post("/_mock/faults", #"[{"fault":"rate_limited","retry_after_seconds":3,"path":"/v1/chat/completions"},{"fault":"server_error","status":502,"count":2}]"#, key: nil)
            #expect(injected.status == 201)
            #expect(try injected.json.array("data")?.map { $0.string("fault") } == ["rate_limited", "server_error"])
            #expect(mock.pendingFaults.map(\.remaining) == [1, 2])

            let limited = try await http.post("/v1/chat/completions", Bodies.chat())
            #expect(limited.status == 429)
            #expect(limited.header("retry-after") == "3")
            #expect(try await http.get("/v1/models").status == 502)

            let cleared = try await http.send(.DELETE, "/_mock/faults", key: nil)
            #expect(cleared.status == 200)
            #expect(mock.pendingFaults.isEmpty)
            #expect(try await http.post("/_mock/faults", #"{"fault":"nope"}"#, key: nil).status == 400)
        }
    }

    @Test func requestLogOverHTTP() async throws {
        try await withMock { (_, http) async throws in
            _ = try await http.post("/v1/chat/completions", Bodies.chat(), key: "sk-one", headers: [("X-Trace", "t1")])
            _ = try await http.get("/v1/models", key: "sk-two")
            let log = try await http.get("/_mock/requests", key: nil).json
            let data = try #require(log.array("data"))
            #expect(data.count == 2)
            let first = data[0]
            #expect(first.int("sequence") == 1)
            #expect(first.string("method") == "POST")
            #expect(first.string("path") == "/v1/chat/completions")
            #expect(first.string("api_key") == "sk-one")
            #expect(first.object("headers")?.string("x-trace") == "t1")
            #expect(first.object("headers")?.string("authorization") == "Bearer sk-one")
            #expect(first.string("body") == Bodies.chat())
            #expect(first.int("status") == 200)
            #expect(first.object("usage")?.int("total_tokens") == 24)

            let filtered = try await http.get("/_mock/requests?path=/v1/models", key: nil).json
            #expect(filtered.array("data")?.map { $0.string("api_key") } == ["sk-two"])
            let since = try await http.get("/_mock/requests?since=1", key: nil).json
            #expect(since.array("data")?.map { $0.int("sequence") } == [2])

            #expect(try await http.send(.DELETE, "/_mock/requests", key: nil).status == 200)
            #expect(try await http.get("/_mock/requests", key: nil).json.array("data")?.isEmpty == true)
        }
    }

    @Test func statsOverHTTP() async throws {
        try await withMock { (mock, http) async throws in
            _ = try await http.post("/v1/chat/completions", Bodies.chat())
            _ = try await http.post("/v1/chat/completions", Bodies.chat(extra: #""stream":true"#))
            _ = try await http.post("/v1/chat/completions", Bodies.chat(), key: nil)
            let stats = try await http.get("/_mock/stats", key: nil).json
            #expect(stats.int("requests_total") == 3)
            #expect(stats.object("requests_by_route")?.int("/v1/chat/completions") == 3)
            #expect(stats.object("requests_by_status")?.int("200") == 2)
            #expect(stats.object("requests_by_status")?.int("401") == 1)
            #expect(stats.int("streams_started") == 1)
            #expect(stats.int("prompt_tokens") == 16)
            #expect(stats.int("completion_tokens") == 32)
            _ = try await http.post("/_mock/reset", "{}", key: nil)
            #expect(mock.stats.requestsTotal == 0)
        }
    }

    @Test func configurationOverHTTP() async throws {
        try await withMock { (mock, http) async throws in
            let changed = try await http.send(.PATCH, "/_mock/config", body: #"{"latency_ms":120,"chunk_delay_ms":3,"completion_tokens":5,"accepted_keys":["sk-a"],"validation_error_style":"wrapped"}"#, key: nil)
            #expect(changed.status == 200)
            #expect(try changed.json.int("latency_ms") == 120)
            #expect(mock.configuration.latency == .milliseconds(120))
            #expect(mock.configuration.streamChunkDelay == .milliseconds(3))
            #expect(mock.configuration.acceptedKeys == ["sk-a"])
            #expect(mock.configuration.validationErrorStyle == .wrapped)
            let clock = ContinuousClock()
            let start = clock.now
            let json = try await http.post("/v1/chat/completions", Bodies.chat(), key: "sk-a").json
            #expect(clock.now - start >= .milliseconds(120))
            #expect(json.object("usage")?.int("completion_tokens") == 5)
            #expect(try await http.post("/v1/chat/completions", Bodies.chat(), key: "sk-b").status == 401)
            let current = try await http.get("/_mock/config", key: nil).json
            #expect(current["accepted_keys"] as? [String] == ["sk-a"])
        }
    }

    @Test func usagePredictionOverHTTP() async throws {
        try await withMock { (_, http) async throws in
            let predicted = try await http.post("/_mock/usage", #"{"path":"/v1/chat/completions","body":\#(Bodies.chat(extra: #""max_tokens":3"#))}"#, key: nil)
            #expect(predicted.status == 200)
            #expect(try predicted.json.int("prompt_tokens") == 8)
            #expect(try predicted.json.int("completion_tokens") == 3)
            let rejected = try await http.post("/_mock/usage", #"{"path":"/v1/chat/completions","body":{"model":"mistral-small-latest"}}"#, key: nil)
            #expect(rejected.status == 422)
            #expect(try rejected.json.object("rejected")?.int("status") == 422)
        }
    }

    @Test func healthAndUnknownControlPaths() async throws {
        try await withMock { (_, http) async throws in
            #expect(try await http.get("/_mock/health", key: nil).body == #"{"status":"ok"}"#)
            #expect(try await http.get("/_mock/nope", key: nil).status == 404)
        }
    }
}
