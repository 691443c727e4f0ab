import Foundation
import MockMistral
import Testing

@Suite struct EmbeddingsTests {
    @Test func oneVectorOf1024PerInputAndPromptOnlyUsage() async throws {
        try await withMock { (mock, http) async throws in
            let body = #"{"model":"mistral-embed","input":["first input","second, longer input text","first input"]}"#
            let response = try await http.post("/v1/embeddings", body)
            #expect(response.status == 200)
            let json = try response.json
            #expect(isHex32(json.string("id") ?? ""))
            #expect(json.string("object") == "list")
            #expect(json.string("model") == "mistral-embed")
            let data = try #require(json.array("data"))
            #expect(data.count == 3)
            #expect(data.map { $0.int("index") } == [0, 1, 2])
            #expect(data.allSatisfy { $0.string("object") == "embedding" })
            let vectors = data.map { ($0["embedding"] as? [NSNumber])?.map(\.doubleValue) ?? [] }
            #expect(vectors.allSatisfy { $0.count == 1024 })
            // Unit vectors; equal inputs give equal vectors.
            let norm = vectors[0].reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 0.01)
            #expect(vectors[0] == vectors[2])

            // 11 bytes → 3, 25 bytes → 7, 11 bytes → 3: 13 prompt tokens, nothing else.
            let usage = try #require(json.object("usage"))
            #expect(usage.int("prompt_tokens") == 13)
            #expect(usage.int("total_tokens") == 13)
            #expect(usage.int("completion_tokens") == 0)
            #expect(try mock.usage(forEmbeddingsBody: body) == MockUsage(promptTokens: 13))
        }
    }

    @Test func singleStringInput() async throws {
        try await withMock { (_, http) async throws in
            let json = try await http.post("/v1/embeddings", #"{"model":"mistral-embed","input":"hello"}"#).json
            #expect(json.array("data")?.count == 1)
            #expect(json.object("usage")?.int("prompt_tokens") == 2)
        }
    }

    @Test func dimensionsFollowTheModelAndOutputDimension() async throws {
        try await withMock { (_, http) async throws in
            let codestral = try await http.post("/v1/embeddings", #"{"model":"codestral-embed","input":"x"}"#).json
            #expect((codestral.array("data")?.first?["embedding"] as? [Any])?.count == 1536)
            let small = try await http.post("/v1/embeddings", #"{"model":"codestral-embed","input":"x","output_dimension":256}"#).json
            #expect((small.array("data")?.first?["embedding"] as? [Any])?.count == 256)
        }
    }

    @Test func base64EncodingCarriesFloat32s() async throws {
        try await withMock { (_, http) async throws in
            let json = try await http.post("/v1/embeddings", #"{"model":"mistral-embed","input":"x","encoding_format":"base64"}"#).json
            let encoded = try #require(json.array("data")?.first?.string("embedding"))
            #expect(Data(base64Encoded: encoded)?.count == 1024 * 4)
        }
    }

    @Test func badInputTypeIs422() async throws {
        try await withMock { (_, http) async throws in
            let response = try await http.post("/v1/embeddings", #"{"model":"mistral-embed","input":5}"#)
            #expect(response.status == 422)
            #expect(response.body.contains(#""loc":["body","input","str"]"#))
        }
    }
}

@Suite struct ModelsTests {
    /// Every id and alias of the reference's price table (§7).
    static let priceTableIDs = [
        "mistral-large-latest", "mistral-large-2512", "mistral-medium-latest", "mistral-medium-3-5", "mistral-medium-3",
        "mistral-small-latest", "mistral-small-2603", "codestral-latest", "codestral-2508", "open-mistral-nemo",
        "open-mistral-nemo-2407", "ministral-8b-latest", "ministral-8b-2512", "ministral-3b-latest", "ministral-3b-2512",
        "ministral-14b-latest", "ministral-14b-2512", "pixtral-large-latest", "pixtral-large-2411", "magistral-medium-latest",
        "magistral-medium-2509", "magistral-small-latest", "magistral-small-2509", "devstral-latest", "devstral-medium-latest",
        "devstral-2512", "devstral-small-latest", "labs-devstral-small-2512", "mistral-embed", "mistral-embed-2312",
        "codestral-embed", "codestral-embed-2505", "mistral-moderation-2603", "mistral-moderation-2411", "voxtral-small-latest",
        "voxtral-small-2507", "voxtral-mini-latest", "voxtral-mini-2602", "mistral-ocr-latest", "mistral-ocr-4-1",
        "mistral-ocr-4-0", "mistral-ocr-2512", "voxtral-mini-tts-latest", "mistral-large-2411", "mistral-medium-2505",
        "mistral-medium-2508", "mistral-small-2503", "mistral-small-2506", "ministral-8b-2410", "ministral-3b-2410",
        "pixtral-12b-2409", "codestral-2501",
    ]

    @Test func listHasACardForEveryPriceTableID() async throws {
        try await withMock { (_, http) async throws in
            let json = try await http.get("/v1/models").json
            #expect(json.string("object") == "list")
            let cards = try #require(json.array("data"))
            let ids = Set(cards.compactMap { $0.string("id") })
            #expect(ids == Set(Self.priceTableIDs))
            for card in cards {
                #expect(card.string("object") == "model")
                #expect(card.string("owned_by") == "mistralai")
                #expect(card.object("capabilities")?["completion_chat"] is Bool)
                #expect(card.int("max_context_length") ?? 0 > 0)
                #expect(card.string("type") == "base")
            }
        }
    }

    @Test func retrieveAnAliasShowsThePinnedName() async throws {
        try await withMock { (_, http) async throws in
            let card = try await http.get("/v1/models/mistral-small-latest").json
            #expect(card.string("id") == "mistral-small-latest")
            #expect(card.string("name") == "mistral-small-2603")
            #expect(card["aliases"] as? [String] == ["mistral-small-2603"])
            #expect(card.object("capabilities")?["function_calling"] as? Bool == true)
            #expect(card.int("max_context_length") == 262_144)
            let codestral = try await http.get("/v1/models/codestral-latest").json
            #expect(codestral.object("capabilities")?["completion_fim"] as? Bool == true)
            let missing = try await http.get("/v1/models/gpt-4o")
            #expect(missing.status == 404)
            #expect(try missing.json.string("object") == "error")
        }
    }

    @Test func knownModelsMatchTheList() {
        #expect(Set(MockMistral.knownModels) == Set(Self.priceTableIDs))
    }
}
