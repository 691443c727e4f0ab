import Foundation
import HTTPTypes
import MockMistral
import Testing
import TollgateDomain
import TollgateStorage

/// Prices seeded by migrations/0002 for mistral-small-latest (USD, per million tokens).
let smallInput: Int64 = 150_000_000
let smallOutput: Int64 = 600_000_000
let embedInput: Int64 = 100_000_000

func expectedCost(prompt: Int, completion: Int, cached: Int = 0, input: Int64, output: Int64) -> Int64 {
    let price = Price(inputPerMillion: Money(nanos: input), outputPerMillion: Money(nanos: output))
    return price.cost(of: Usage(promptTokens: prompt, completionTokens: completion, cachedTokens: cached)).nanos
}

nonisolated(unsafe) let chatBody: [String: Any] = ["model": "mistral-small-latest", "messages": [["role": "user", "content": "Hello there, how are you?"]]]

@Suite("Proxy pipeline")
struct ProxyPipelineTests {
    @Test func chatIsForwardedWithTheTenantSecretAndSettledAtPriceTimesUsage() async throws {
        try await ProxyHarness.run { h in
            let reply = try await h.post("/v1/chat/completions", chatBody, headers: [
                .cookie: "session=abc", .init("x-forwarded-for")!: "1.2.3.4", .init("x-tollgate-metadata")!: "{\"team\":\"search\"}",
            ])
            #expect(reply.status == .ok, "\(reply.body)")
            #expect(reply.json["object"] as? String == "chat.completion")
            let requestID = try #require(reply.headers[.init("x-request-id")!])

            let seen = try #require(h.mock.requestLog.last)
            #expect(seen.apiKey == upstreamSecret)
            #expect(seen.headers[.authorization] == "Bearer \(upstreamSecret)")
            #expect(seen.headers[.cookie] == nil)
            #expect(seen.headers[.init("x-forwarded-for")!] == nil)
            #expect(!String(buffer: seen.body).contains(h.seed.secret))
            let sent = try JSONSerialization.jsonObject(with: Data(buffer: seen.body)) as? [String: Any]
            #expect(sent?["max_tokens"] as? Int == 4096, "the hold must bound the cost, so max_tokens is set")

            let usage = try #require(reply.json["usage"] as? [String: Any])
            let prompt = try #require(usage["prompt_tokens"] as? Int), completion = try #require(usage["completion_tokens"] as? Int)
            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.count == 1)
            #expect(rows.first?.requestID.uuidString.lowercased() == requestID)
            #expect(rows.first?.costNanos == expectedCost(prompt: prompt, completion: completion, input: smallInput, output: smallOutput))
            #expect(rows.first?.estimated == false)
            #expect(rows.first?.promptTokens == prompt)
        }
    }

    @Test func streamingChatRelaysEventsAndSettlesFromTheFinalUsage() async throws {
        try await ProxyHarness.run { h in
            var body = chatBody
            body["stream"] = true
            body["max_tokens"] = 50
            let reply = try await h.post("/v1/chat/completions", body)
            #expect(reply.status == .ok)
            #expect(reply.headers[.contentType]?.hasPrefix("text/event-stream") == true)
            let events = reply.body.components(separatedBy: "\n\n").filter { !$0.isEmpty }
            #expect(events.last == "data: [DONE]")
            let final = try #require(events.dropLast().last?.dropFirst("data: ".count))
            let usage = try #require((try JSONSerialization.jsonObject(with: Data(final.utf8)) as? [String: Any])?["usage"] as? [String: Any])
            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.first?.costNanos == expectedCost(prompt: usage["prompt_tokens"] as! Int,
                                                         completion: usage["completion_tokens"] as! Int,
                                                         input: smallInput, output: smallOutput))
            #expect(rows.first?.estimated == false)
        }
    }

    @Test func embeddingsAreChargedForInputOnly() async throws {
        try await ProxyHarness.run { h in
            let reply = try await h.post("/v1/embeddings", ["model": "mistral-embed", "input": ["one", "two", "three"]])
            #expect(reply.status == .ok, "\(reply.body)")
            let usage = try #require(reply.json["usage"] as? [String: Any])
            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.first?.costNanos == expectedCost(prompt: usage["prompt_tokens"] as! Int, completion: 0,
                                                         input: embedInput, output: 0))
        }
    }

    @Test func badKeysAreRefusedWithoutReachingMistral() async throws {
        try await ProxyHarness.run { h in
            var wrongChecksum = Array(h.seed.secret)
            wrongChecksum[wrongChecksum.count - 1] = wrongChecksum.last == "A" ? "B" : "A"
            let unknown = SecretToken.generate(.virtualKey).value
            for key in ["nope", String(wrongChecksum), unknown, "tg_live_short"] {
                let reply = try await h.post("/v1/chat/completions", chatBody, key: key)
                #expect(reply.status == .unauthorized)
                #expect(reply.json["object"] as? String == "error")
                #expect(reply.json["code"] as? String == "invalid_api_key")
            }
            #expect(h.mock.requestLog.count == 0)
        }
    }

    @Test func modelAndEndpointAllowListsAreEnforced() async throws {
        try await ProxyHarness.run(KeyOptions(models: ["codestral-*"], endpoints: ["chat"])) { h in
            let model = try await h.post("/v1/chat/completions", chatBody)
            #expect(model.status == .forbidden)
            #expect(model.json["code"] as? String == "model_not_allowed")
            let endpoint = try await h.post("/v1/embeddings", ["model": "codestral-embed", "input": ["x"]])
            #expect(endpoint.status == .forbidden)
            #expect(endpoint.json["code"] as? String == "endpoint_not_allowed")
            #expect(h.mock.requestLog.count == 0)
        }
    }

    @Test func unknownRoutesAndBatchAre404And403() async throws {
        try await ProxyHarness.run { h in
            let unknown = try await h.send(.get, "/v1/does-not-exist")
            #expect(unknown.status == .notFound)
            #expect(unknown.json["object"] as? String == "error")
            let batch = try await h.send(.get, "/v1/batch/jobs")
            #expect(batch.status == .forbidden)
            let models = try await h.send(.get, "/v1/models")
            #expect(models.status == .ok)
            #expect(models.json["object"] as? String == "list")
        }
    }

    @Test func revokeTakesEffectImmediately() async throws {
        try await ProxyHarness.run { h in
            #expect(try await h.post("/v1/chat/completions", chatBody).status == .ok)
            try await h.database.transaction { db in
                _ = try await VirtualKeyRepository(logger: h.database.logger).revoke(tenantID: h.seed.tenantID, id: h.seed.keyID, on: db)
            }
            let refused = try await h.post("/v1/chat/completions", chatBody)
            #expect(refused.status == .forbidden)
            #expect(refused.json["code"] as? String == "key_revoked")
            #expect(h.mock.requestLog.count == 1)
        }
    }

    @Test func upstreamErrorsPassThroughAndRetriableOnesAreRetried() async throws {
        try await ProxyHarness.run { h in
            h.mock.inject(.rateLimited(retryAfterSeconds: 0), count: 1, matching: "/v1/chat/completions")
            let retried = try await h.post("/v1/chat/completions", chatBody)
            #expect(retried.status == .ok, "\(retried.body)")
            #expect(h.mock.requestLog.count == 2)

            h.mock.inject(.serverError(status: 500), count: 1, matching: "/v1/chat/completions")
            let failed = try await h.post("/v1/chat/completions", chatBody)
            #expect(failed.status.code == 500)
            let rows = try await h.settled(expectedRows: 2)
            #expect(rows.count == 2)
            #expect(rows.contains { $0.statusCode == 500 && $0.costNanos == 0 })
        }
    }

    @Test func duplicateKeysAndBadMaxTokensAre400() async throws {
        try await ProxyHarness.run { h in
            let duplicate = try await h.send(.post, "/v1/chat/completions",
                raw: #"{"model":"codestral-latest","messages":[{"role":"user","content":"hi"}],"model":"mistral-large-latest"}"#)
            #expect(duplicate.status == .badRequest, "\(duplicate.body)")
            let negative = try await h.send(.post, "/v1/chat/completions",
                raw: #"{"model":"mistral-small-latest","messages":[{"role":"user","content":"hi"}],"max_tokens":-1}"#)
            #expect(negative.status == .badRequest)
            let broken = try await h.send(.post, "/v1/chat/completions", raw: #"{"model": "#)
            #expect(broken.status == .badRequest)
            #expect(h.mock.requestLog.count == 0)
        }
    }
}

/// Ledger cost equals the price table × the mock's usage on every metered endpoint.
@Suite("Metered endpoints")
struct MeteredEndpointTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let path: String
        let body: String
        let input: Int64
        let output: Int64
        var testDescription: String { path }
    }

    static let cases: [Case] = [
        Case(path: "/v1/fim/completions", body: #"{"model":"codestral-latest","prompt":"def add(a, b):","suffix":"\n","max_tokens":20}"#,
             input: 300_000_000, output: 900_000_000),
        Case(path: "/v1/moderations", body: #"{"model":"mistral-moderation-2411","input":["some text to check"]}"#,
             input: 100_000_000, output: 0),
        Case(path: "/v1/chat/moderations",
             body: #"{"model":"mistral-moderation-2411","input":[[{"role":"user","content":"hello"}]]}"#,
             input: 100_000_000, output: 0),
        Case(path: "/v1/embeddings", body: #"{"model":"codestral-embed","input":["func a() {}","func b() {}"]}"#,
             input: 150_000_000, output: 0),
        Case(path: "/v1/classifications", body: #"{"model":"mistral-moderation-2411","input":["classify me"]}"#,
             input: 100_000_000, output: 0),
        Case(path: "/v1/chat/classifications",
             body: #"{"model":"mistral-moderation-2411","input":[[{"role":"user","content":"classify me"}]]}"#,
             input: 100_000_000, output: 0),
    ]

    /// Streamed FIM is metered from its final chunk like streamed chat.
    @Test func streamedFIMIsSettledFromTheFinalUsage() async throws {
        try await ProxyHarness.run { h in
            let reply = try await h.send(.post, "/v1/fim/completions",
                raw: #"{"model":"codestral-latest","prompt":"def f(x):","suffix":"\n","max_tokens":12,"stream":true}"#)
            #expect(reply.status == .ok)
            let final = try #require(reply.body.components(separatedBy: "\n\n").filter { $0.contains("\"usage\"") }.last)
            let usage = try #require((try JSONSerialization.jsonObject(with: Data(final.dropFirst(6).utf8)) as? [String: Any])?["usage"]
                as? [String: Any])
            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.first?.costNanos == expectedCost(prompt: usage["prompt_tokens"] as! Int, completion: usage["completion_tokens"] as! Int,
                                                         input: 300_000_000, output: 900_000_000))
            #expect(rows.first?.estimated == false)
        }
    }

    @Test(arguments: cases)
    func costIsPriceTimesUsage(_ c: Case) async throws {
        try await ProxyHarness.run { h in
            let reply = try await h.send(.post, c.path, raw: c.body)
            #expect(reply.status == .ok, "\(reply.body)")
            let usage = try #require(reply.json["usage"] as? [String: Any], "\(reply.body)")
            let prompt = usage["prompt_tokens"] as? Int ?? 0
            let completion = usage["completion_tokens"] as? Int ?? 0
            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.first?.costNanos == expectedCost(prompt: prompt, completion: completion, input: c.input, output: c.output))
            #expect(rows.first?.promptTokens == prompt)
            #expect(rows.first?.estimated == false)
        }
    }

    /// OCR is billed per page: the hold covers the pages named (or a default), the ledger the pages processed.
    @Test func ocrIsChargedPerProcessedPage() async throws {
        try await ProxyHarness.run { h in
            let reply = try await h.send(.post, "/v1/ocr", raw: #"""
                {"model":"mistral-ocr-latest","document":{"type":"document_url","document_url":"https://example.com/a.pdf"},"pages":[0,2,5]}
                """#)
            #expect(reply.status == .ok, "\(reply.body)")
            let processed = try #require((reply.json["usage_info"] as? [String: Any])?["pages_processed"] as? Int)
            #expect(processed == 3)
            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.first?.costNanos == Int64(processed) * 4_000_000, "mistral-ocr-latest: $0.004 per page")
            #expect(rows.first?.estimated == false)
        }
    }

    /// Agents name no model: held at the tenant's ceiling price, settled at the answering model's price
    /// (the mock's agents run on mistral-medium-latest: $1.5 / $7.5 per million tokens).
    @Test(arguments: [false, true])
    func agentCompletionsAreSettledAtTheAnsweringModelsPrice(stream: Bool) async throws {
        try await ProxyHarness.run { h in
            let body = #"{"agent_id":"ag_0123456789","stream":\#(stream),"max_tokens":30,"messages":[{"role":"user","content":"hi agent"}]}"#
            let reply = try await h.send(.post, "/v1/agents/completions", raw: body)
            #expect(reply.status == .ok, "\(reply.body)")
            let usageJSON: [String: Any]
            if stream {
                let final = try #require(reply.body.components(separatedBy: "\n\n").filter { $0.contains("\"usage\"") }.last)
                usageJSON = try #require((try JSONSerialization.jsonObject(with: Data(final.dropFirst(6).utf8)) as? [String: Any])?["usage"]
                    as? [String: Any])
            } else {
                usageJSON = try #require(reply.json["usage"] as? [String: Any])
            }
            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.first?.costNanos == expectedCost(prompt: usageJSON["prompt_tokens"] as! Int,
                                                         completion: usageJSON["completion_tokens"] as! Int,
                                                         input: 1_500_000_000, output: 7_500_000_000))
            #expect(rows.first?.model == "agent:ag_0123456789")
        }
    }

    @Test func agentsAreRefusedForKeysLimitedToSomeModels() async throws {
        try await ProxyHarness.run(KeyOptions(models: ["mistral-small-*"])) { h in
            let reply = try await h.send(.post, "/v1/agents/completions",
                                         raw: #"{"agent_id":"ag_1","messages":[{"role":"user","content":"hi"}]}"#)
            #expect(reply.status == .forbidden)
            #expect(reply.json["code"] as? String == "model_not_allowed")
            #expect(h.mock.requestLog.count == 0)
        }
    }

    @Test func oversizedAndDeeplyNestedBodiesAreRefused() async throws {
        try await ProxyHarness.run(configure: { $0.maxBodyBytes = 4096 }) { h in
            let big = try await h.send(.post, "/v1/chat/completions",
                raw: #"{"model":"mistral-small-latest","messages":[{"role":"user","content":""# + String(repeating: "x", count: 5000) + #""}]}"#)
            #expect(big.status == .contentTooLarge)
            #expect(big.json["object"] as? String == "error")
            let deep = try await h.send(.post, "/v1/chat/completions",
                raw: #"{"model":"mistral-small-latest","messages":"# + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "}")
            #expect(deep.status == .badRequest)
            #expect(h.mock.requestLog.count == 0)
        }
    }

    @Test func unpricedModelsAreRefusedByDefault() async throws {
        try await ProxyHarness.run { h in
            let reply = try await h.send(.post, "/v1/chat/completions",
                                         raw: #"{"model":"ft:open-mistral-7b:custom","messages":[{"role":"user","content":"hi"}]}"#)
            #expect(reply.status == .forbidden)
            #expect(reply.json["code"] as? String == "model_not_priced")
            #expect(h.mock.requestLog.count == 0)
        }
    }
}

@Suite("Proxy secrets")
struct ProxySecretTests {
    /// Neither the virtual key nor the tenant's Mistral key appears in any response body, header or
    /// log line, on success and error paths alike.
    @Test func noSecretInResponsesOrLogs() async throws {
        try await ProxyHarness.run(KeyOptions(limits: RateLimits(requestsPerMinute: 2))) { h in
            var texts: [String] = []
            h.mock.inject(.serverError(status: 500), count: 1, matching: "/v1/embeddings")
            let failed = try await h.post("/v1/embeddings", ["model": "mistral-embed", "input": ["x"]])
            #expect(failed.status.code == 500)
            texts.append(failed.body)
            for _ in 0..<2 {  // the second is over the requests/min limit
                let reply = try await h.post("/v1/chat/completions", chatBody)
                texts.append(reply.body)
                texts.append(reply.headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n"))
            }
            texts.append(try await h.post("/v1/chat/completions", chatBody, key: h.seed.secret + "x").body)
            _ = try await h.settled(expectedRows: 2)
            #expect(!h.logs.all.isEmpty, "the scan must have log lines to look at")
            let metrics = try await h.send(.get, "/metrics")
            #expect(metrics.body.contains("tollgate_cost_nanos_total"), "\(metrics.body.prefix(300))")
            texts.append(metrics.body)
            for text in texts + h.logs.all {
                #expect(!text.contains(h.seed.secret), "virtual key leaked: \(text.prefix(200))")
                #expect(!text.contains(upstreamSecret), "Mistral key leaked: \(text.prefix(200))")
            }
        }
    }
}

/// Conversations: started with a model they are priced by it; appended to, they are held with a
/// history allowance at the ceiling price and settled at the answering model's price.
@Suite("Conversations")
struct ConversationTests {
    @Test(arguments: [false, true])
    func startAndAppendAreSettledAtTheModelsPrice(stream: Bool) async throws {
        try await ProxyHarness.run { h in
            let start = try await h.send(.post, "/v1/conversations", raw: """
                {"model":"mistral-small-latest","inputs":"Hello there","stream":false,"completion_args":{"temperature":0.2}}
                """)
            #expect(start.status == .ok, "\(start.body)")
            let conversationID = try #require(start.json["conversation_id"] as? String)
            let sent = try #require(h.mock.requestLog.last)
            let args = (try JSONSerialization.jsonObject(with: Data(buffer: sent.body)) as? [String: Any])?["completion_args"] as? [String: Any]
            #expect(args?["max_tokens"] as? Int == 4096, "the hold must bound the cost")
            #expect(args?["temperature"] as? Double == 0.2)

            let append = try await h.send(.post, "/v1/conversations/\(conversationID)",
                                          raw: #"{"inputs":"And again","stream":\#(stream),"completion_args":{"max_tokens":20}}"#)
            #expect(append.status == .ok, "\(append.body)")
            let rows = try await h.settled(expectedRows: 2)
            #expect(rows.count == 2)
            for row in rows {
                // mistral-small-latest: $0.15 / $0.6 per million tokens.
                #expect(row.costNanos == expectedCost(prompt: row.promptTokens, completion: row.completionTokens,
                                                      input: smallInput, output: smallOutput), "\(row)")
                #expect(!row.estimated)
                #expect(row.promptTokens > 0)
            }
        }
    }
}
