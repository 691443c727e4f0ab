import Foundation
import MockMistral
import Testing

@Suite struct ValidationTests {
    /// Fields OpenAI clients send that the live API rejects with 422 extra_forbidden (reference §3, §8).
    @Test(arguments: [
        (#""stream_options":{"include_usage":true}"#, "stream_options", #"{"include_usage":true}"#),
        (#""max_completion_tokens":32000"#, "max_completion_tokens", "32000"),
        (#""user":"u-1""#, "user", #""u-1""#),
        (#""store":false"#, "store", "false"),
        (#""seed":7"#, "seed", "7"),
    ])
    func openAIOnlyFieldsAreExtraForbidden(field: String, name: String, input: String) async throws {
        try await withMock { (mock, http) async throws in
            let response = try await http.post("/v1/chat/completions", Bodies.chat(extra: field))
            #expect(response.status == 422)
            #expect(response.body == #"{"detail":[{"type":"extra_forbidden","loc":["body","\#(name)"],"msg":"Extra inputs are not permitted","input":\#(input)}]}"#)
            #expect(mock.requestLog.last?.status == 422)
            #expect(mock.requestLog.last?.usage == nil)
        }
    }

    @Test func wrappedStyleUsesTheMistralEnvelope() async throws {
        try await withMock(MockMistralConfiguration(validationErrorStyle: .wrapped)) { (_, http) async throws in
            let response = try await http.post("/v1/chat/completions", Bodies.chat(extra: #""stream_options":{"include_usage":true}"#))
            #expect(response.status == 422)
            let json = try response.json
            #expect(json.string("object") == "error")
            #expect(json.string("type") == "invalid_request_error")
            #expect(json["param"] is NSNull && json["code"] is NSNull)
            let detail = try #require(json.object("message")?.array("detail")?.first)
            #expect(detail.string("type") == "extra_forbidden")
            #expect(detail["loc"] as? [String] == ["body", "stream_options"])
        }
    }

    @Test func missingRequiredFieldsAre422() async throws {
        try await withMock { (_, http) async throws in
            let response = try await http.post("/v1/chat/completions", #"{"temperature":0.2}"#)
            #expect(response.status == 422)
            let detail = try #require(try response.json.array("detail"))
            #expect(detail.map { $0["loc"] as? [String] } == [["body", "model"], ["body", "messages"]])
            #expect(detail.allSatisfy { $0.string("type") == "missing" && $0.string("msg") == "Field required" })
        }
    }

    @Test func invalidJSONIs422JSONInvalid() async throws {
        try await withMock { (_, http) async throws in
            let response = try await http.post("/v1/chat/completions", #"{"model": "x",}"#)
            #expect(response.status == 422)
            #expect(response.body == #"{"detail":[{"type":"json_invalid","loc":["body",14],"msg":"JSON decode error","input":{},"ctx":{"error":"Expecting property name enclosed in double quotes"}}]}"#)
            let empty = try await http.send(.POST, "/v1/chat/completions", body: "")
            #expect(empty.status == 422)
            #expect(empty.body == #"{"detail":[{"type":"missing","loc":["body"],"msg":"Field required","input":null}]}"#)
        }
    }

    @Test func numericConstraints() async throws {
        try await withMock { (_, http) async throws in
            let response = try await http.post("/v1/chat/completions", Bodies.chat(extra: #""max_tokens":-1,"temperature":2,"n":0"#))
            #expect(response.status == 422)
            let detail = try #require(try response.json.array("detail"))
            let byField = Dictionary(uniqueKeysWithValues: detail.map { (($0["loc"] as? [String])?.last ?? "", $0) })
            #expect(byField["max_tokens"]?.string("type") == "greater_than_equal")
            #expect(byField["max_tokens"]?.string("msg") == "Input should be greater than or equal to 0")
            #expect(byField["temperature"]?.string("type") == "less_than_equal")
            #expect(byField["n"]?.string("type") == "greater_than_equal")
            let fractional = try await http.post("/v1/chat/completions", Bodies.chat(extra: #""max_tokens":1.5"#))
            #expect(fractional.status == 422)
            #expect(fractional.body.contains("int_from_float"))
        }
    }

    @Test func messageVariantsForbidExtraFields() async throws {
        try await withMock { (_, http) async throws in
            let body = #"{"model":"mistral-small-latest","messages":[{"role":"user","content":"hi","name":"bob"}]}"#
            let response = try await http.post("/v1/chat/completions", body)
            #expect(response.status == 422)
            #expect(response.body.contains(#""loc":["body","messages",0,"user","name"]"#))
            let badRole = try await http.post("/v1/chat/completions", #"{"model":"mistral-small-latest","messages":[{"role":"developer","content":"hi"}]}"#)
            #expect(badRole.status == 422)
            #expect(badRole.body.contains("union_tag_invalid"))
        }
    }

    @Test func mistralCommonChecksAre400() async throws {
        try await withMock { (_, http) async throws in
            let lastAssistant = try await http.post("/v1/chat/completions", #"{"model":"mistral-small-latest","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}"#)
            #expect(lastAssistant.status == 400)
            #expect(lastAssistant.body == #"{"object":"error","message":"Expected last role User or Tool (or Assistant with prefix True) for serving but got assistant","type":"invalid_request_error","param":null,"code":null}"#)
            let prefix = try await http.post("/v1/chat/completions", #"{"model":"mistral-small-latest","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo","prefix":true}]}"#)
            #expect(prefix.status == 200)
            let badToolID = try await http.post("/v1/chat/completions", #"{"model":"mistral-small-latest","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc123","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","content":"1","tool_call_id":"call_abc123"}]}"#)
            #expect(badToolID.status == 400)
            #expect(badToolID.body.contains("Tool call id was call_abc123"))
        }
    }

    @Test func unknownModelIsInvalidModel() async throws {
        try await withMock { (mock, http) async throws in
            let response = try await http.post("/v1/chat/completions", Bodies.chat(model: "mistral-medium-3.5"))
            #expect(response.status == 400)
            #expect(response.body == #"{"object":"error","message":"Invalid model: mistral-medium-3.5","type":"invalid_model","param":null,"code":"1500","raw_status_code":400}"#)
            #expect(throws: MockRequestRejected.self) { try mock.usage(forChatBody: Bodies.chat(model: "mistral-medium-3.5")) }
            // Fine-tuned ids and, when configured, anything else are accepted.
            #expect(try await http.post("/v1/chat/completions", Bodies.chat(model: "ft:open-mistral-7b:abc:20240101:x")).status == 200)
            mock.updateConfiguration { $0.rejectUnknownModels = false }
            #expect(try await http.post("/v1/chat/completions", Bodies.chat(model: "anything")).status == 200)
        }
    }

    @Test func fimAndEmbeddingsAreStrictToo() async throws {
        try await withMock { (_, http) async throws in
            let fim = try await http.post("/v1/fim/completions", #"{"model":"codestral-latest","prompt":"x","messages":[]}"#)
            #expect(fim.status == 422)
            #expect(fim.body.contains(#""loc":["body","messages"]"#))
            let missingPrompt = try await http.post("/v1/fim/completions", #"{"model":"codestral-latest"}"#)
            #expect(missingPrompt.status == 422)
            #expect(missingPrompt.body.contains(#""loc":["body","prompt"]"#))
            let embeddings = try await http.post("/v1/embeddings", #"{"model":"mistral-embed","input":"x","dimensions":8}"#)
            #expect(embeddings.status == 422)
            #expect(embeddings.body.contains("extra_forbidden"))
        }
    }

    @Test func unknownPathsAndMethods() async throws {
        try await withMock { (mock, http) async throws in
            let notFound = try await http.post("/v1/files/upload", "{}")
            #expect(notFound.status == 404)
            #expect(notFound.body == #"{"object":"error","message":"Not Found","type":"invalid_request_error","param":null,"code":null}"#)
            let wrongMethod = try await http.get("/v1/chat/completions")
            #expect(wrongMethod.status == 405)
            #expect(try wrongMethod.json.string("object") == "error")
            #expect(mock.stats.requestsByRoute["unknown"] == 2)
        }
    }
}

@Suite struct AuthTests {
    @Test func missingKeyIs401WithTheGatewayBody() async throws {
        try await withMock { (mock, http) async throws in
            let response = try await http.post("/v1/chat/completions", Bodies.chat(), key: nil)
            #expect(response.status == 401)
            let json = try response.json
            #expect(json.keys.sorted() == ["message", "request_id"])
            #expect(json.string("message") == "Unauthorized")
            #expect(isHex32(json.string("request_id") ?? ""))
            #expect(response.header("x-kong-request-id") == json.string("request_id"))
            #expect(mock.requestLog.last?.apiKey == nil)
        }
    }

    @Test func nonBearerSchemesAreRejected() async throws {
        try await withMock { (_, http) async throws in
            let response = try await http.send(.POST, "/v1/chat/completions", body: Bodies.chat(), key: nil,
                                               headers: [("Authorization", "Basic dXNlcjpwYXNz")])
            #expect(response.status == 401)
            let empty = try await http.send(.POST, "/v1/chat/completions", body: Bodies.chat(), key: nil, headers: [("Authorization", "Bearer ")])
            #expect(empty.status == 401)
        }
    }

    @Test func acceptedKeysRestrictAccess() async throws {
        try await withMock(MockMistralConfiguration(acceptedKeys: ["sk-upstream"])) { (mock, http) async throws in
            #expect(try await http.post("/v1/chat/completions", Bodies.chat(), key: "sk-other").status == 401)
            #expect(try await http.post("/v1/chat/completions", Bodies.chat(), key: "sk-upstream").status == 200)
            #expect(try await http.get("/v1/models", key: "sk-other").status == 401)
            #expect(mock.requestLog.entries.map(\.apiKey) == ["sk-other", "sk-upstream", "sk-other"])
            #expect(mock.requestLog.entries.map(\.status) == [401, 200, 401])
        }
    }

    @Test func rateLimitHeadersAreSentAndCountDown() async throws {
        try await withMock { (_, http) async throws in
            let first = try await http.post("/v1/chat/completions", Bodies.chat())
            let second = try await http.post("/v1/chat/completions", Bodies.chat())
            #expect(first.header("x-ratelimit-limit-req-minute") == "720")
            #expect(first.header("x-ratelimit-limit-tokens-minute") == "5000000")
            #expect(first.header("x-ratelimit-tokens-query-cost") == "24")
            let remainingFirst = Int(first.header("x-ratelimit-remaining-req-minute") ?? "") ?? -1
            let remainingSecond = Int(second.header("x-ratelimit-remaining-req-minute") ?? "") ?? -1
            // Windows are calendar minutes: the second request may open a fresh one.
            let secondTokens = Int(second.header("x-ratelimit-remaining-tokens-minute") ?? "")
            if remainingSecond == 719 && remainingFirst != 720 {
                #expect(secondTokens == 5_000_000 - 24, "a new minute starts counting afresh")
            } else {
                #expect(remainingSecond == remainingFirst - 1)
                #expect(secondTokens == 5_000_000 - 48)
            }
            #expect(first.header("x-ratelimit-limit-tokens-month") != nil)
            #expect(first.header("x-ratelimit-remaining-tokens-month") != nil)
        }
    }
}
