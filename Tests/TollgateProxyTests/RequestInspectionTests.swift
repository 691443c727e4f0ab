import Foundation
import MockMistral
import NIOCore
import Testing
@testable import TollgateProxy

private let inspector = RequestInspector()

private func inspect(_ body: String, maxDepth: Int = 64) throws(RequestInspectionError) -> InspectedRequest {
    try RequestInspector(maxDepth: maxDepth).inspect(Array(body.utf8))
}

private func inspectionError(_ body: [UInt8], maxDepth: Int = 64) -> RequestInspectionError? {
    do {
        _ = try RequestInspector(maxDepth: maxDepth).inspect(body)
        return nil
    } catch {
        return error
    }
}

private func inspectionError(_ body: String, maxDepth: Int = 64) -> RequestInspectionError? {
    inspectionError(Array(body.utf8), maxDepth: maxDepth)
}

private func isInvalidJSON(_ body: [UInt8]) -> Bool {
    if case .invalidJSON? = inspectionError(body) { return true }
    return false
}

/// JSON text for a Swift string, via Foundation (an independent encoder).
private func jsonString(_ text: String) -> String {
    let data = try! JSONSerialization.data(withJSONObject: [text], options: [.fragmentsAllowed])
    return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast())
}

/// Deterministic pseudo-random numbers for property tests (reproducible failures).
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// Bodies from the reference (/work/shared/mistral-api.md §3, §8).
enum ReferenceBodies {
    static let sdkChat = #"{"model":"mistral-small-latest","messages":[{"content":"hi","role":"user"}],"stream":false}"#
    static let sdkChatStream = #"{"model":"mistral-small-latest","messages":[{"content":"hi","role":"user"}],"stream":true}"#
    static let sdkFIM = #"{"model":"codestral-latest","prompt":"def fibonacci(n):","stream":false,"suffix":"print(fibonacci(10))"}"#
    static let sdkEmbeddings = #"{"model":"mistral-embed","input":["Embed this sentence.","As well as this one.","And a third"]}"#
    static let chatWithTools = #"""
    {
      "model": "mistral-large-latest",
      "messages": [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "What's the weather in Paris, \u00e9t\u00e9 \ud83d\ude00?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "gSIMJiOkT", "type": "function",
          "function": {"name": "weather", "arguments": "{\"location\": \"Paris\"}"}, "index": 0}]},
        {"role": "tool", "tool_call_id": "gSIMJiOkT", "name": "weather", "content": "{\"temp\": 21}"}
      ],
      "tools": [{"type": "function", "function": {"name": "weather", "description": "Get the weather",
        "strict": false, "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
        "required": ["location"]}}}],
      "tool_choice": "auto",
      "parallel_tool_calls": true,
      "temperature": 0.3,
      "top_p": 1,
      "max_tokens": 512,
      "random_seed": 42,
      "stop": ["\n\n"],
      "n": 2,
      "safe_prompt": false
    }
    """#
    static let jsonMode = #"{"model":"mistral-small-latest","messages":[{"role":"user","content":"Return JSON"}],"response_format":{"type":"json_schema","json_schema":{"name":"reply","schema":{"type":"object","properties":{"reply":{"type":"string"}},"required":["reply"]},"strict":true}},"stream":true,"max_tokens":null}"#
    static let reasoning = #"{"model":"magistral-medium-latest","messages":[{"role":"user","content":[{"type":"text","text":"2+2?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}}]}],"prompt_mode":"reasoning","reasoning_effort":"high"}"#
    static let conversation = #"{"model":"mistral-medium-latest","inputs":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}],"instructions":"Be brief.","completion_args":{"max_tokens":64,"temperature":0.2},"stream":true,"store":false}"#
    static let agents = #"{"agent_id":"ag_0123456789","messages":[{"role":"user","content":"hello"}]}"#
}

@Suite("Request inspection")
struct RequestInspectionTests {
    // MARK: Valid bodies

    @Test func sdkChatBodies() throws {
        let chat = try inspect(ReferenceBodies.sdkChat)
        #expect(chat.model == "mistral-small-latest")
        #expect(chat.stream == false)
        #expect(chat.maxTokens == nil)
        #expect(chat.n == nil && chat.choices == 1)
        #expect(chat.messageCount == 1)
        #expect(chat.bodyLength == ReferenceBodies.sdkChat.utf8.count)
        let stream = try inspect(ReferenceBodies.sdkChatStream)
        #expect(stream.stream == true)
    }

    @Test func chatWithTools() throws {
        let request = try inspect(ReferenceBodies.chatWithTools)
        #expect(request.model == "mistral-large-latest")
        #expect(request.maxTokens == 512)
        #expect(request.n == 2 && request.choices == 2)
        #expect(request.messageCount == 4)
        #expect(request.stream == false)
        #expect(request.safePrompt == false)
        // Every byte of message text, tool-call arguments and the tool schema is inside the bound.
        #expect(request.promptTokensUpperBound > 600)
    }

    @Test func jsonModeFIMEmbeddingsAgentsConversations() throws {
        let json = try inspect(ReferenceBodies.jsonMode)
        #expect(json.stream && json.maxTokens == nil)
        guard case .replaceNull = json.injectionPoint else {
            Issue.record("max_tokens: null must be replaced, not duplicated")
            return
        }

        let fim = try inspect(ReferenceBodies.sdkFIM)
        #expect(fim.model == "codestral-latest" && fim.messageCount == 0 && fim.inputCount == 0)
        #expect(fim.promptTokensUpperBound >= "def fibonacci(n):".utf8.count + "print(fibonacci(10))".utf8.count)

        let embeddings = try inspect(ReferenceBodies.sdkEmbeddings)
        #expect(embeddings.model == "mistral-embed" && embeddings.inputCount == 3)
        let single = try inspect(#"{"model":"mistral-embed","input":"one string"}"#)
        #expect(single.inputCount == 1)

        let agents = try inspect(ReferenceBodies.agents)
        #expect(agents.model == nil && agents.agentID == "ag_0123456789")

        let conversation = try inspect(ReferenceBodies.conversation)
        #expect(conversation.messageCount == 2)
        #expect(conversation.completionArgsMaxTokens == 64)
        #expect(conversation.maxTokens == nil)
        #expect(conversation.stream)

        let reasoning = try inspect(ReferenceBodies.reasoning)
        #expect(reasoning.imageCount == 1)
        let rule = PromptTokenBoundRule.default
        #expect(reasoning.promptTokensUpperBound >= rule.tokensPerImage + rule.promptModeAllowance)
        // The base64 image is not counted as text: an image is budgeted, not its bytes.
        #expect(reasoning.promptTokensUpperBound < rule.tokensPerImage + rule.promptModeAllowance + 200)
    }

    @Test func modelAndStreamTypes() {
        #expect(inspectionError(#"{"model":42}"#)?.message == "'model' must be a string")
        #expect(inspectionError(#"{"model":"m","stream":"true"}"#)?.message == "'stream' must be a boolean")
        #expect(inspectionError(#"{"stream":1}"#)?.message == "'stream' must be a boolean")
        #expect((try? inspect(#"{"stream":null}"#))?.stream == false)
        #expect((try? inspect(#"{"model":null}"#))?.model == nil)
        #expect((try? inspect(#"{"model":"mistral\u002dsmall\/x"}"#))?.model == "mistral-small/x")
        #expect((try? inspect(#"{}"#)) != nil)
        #expect((try? inspect(" \t\r\n{ } \n")) != nil)
    }

    @Test func topLevelMustBeAnObject() {
        for body in ["[]", "[1,2]", "\"model\"", "42", "-1", "true", "false", "null"] {
            #expect(inspectionError(body) == .notAnObject, "\(body)")
        }
        #expect(inspectionError("[1,2]")?.message == "the request body must be a JSON object")
    }

    // MARK: Duplicate keys

    @Test func duplicateKeysAtTopLevel() {
        let error = inspectionError(#"{"model":"mistral-small-latest","messages":[],"model":"mistral-large-latest"}"#)
        #expect(error?.message == "duplicate key 'model' in the request body")
        #expect(error?.code == "duplicate_key")
        if case .duplicateKey(_, _, let offset)? = error { #expect(offset == 46) }
        #expect(inspectionError(#"{"stream":false,"stream":true}"#)?.message == "duplicate key 'stream' in the request body")
        #expect(inspectionError(#"{"max_tokens":1,"max_tokens":null}"#) != nil)
    }

    @Test func duplicateKeysViaEscapes() {
        #expect(inspectionError(#"{"model":"a","mo\u0064el":"b"}"#)?.message == "duplicate key 'model' in the request body")
        #expect(inspectionError(#"{"\u006d\u006F\u0064\u0065\u006c":"a","model":"b"}"#)?.message == "duplicate key 'model' in the request body")
        #expect(inspectionError(#"{"a\/b":1,"a/b":2}"#) != nil)
        #expect(inspectionError(#"{"\ud83d\ude00":1,"😀":2}"#)?.message == "duplicate key '😀' in the request body")
        #expect(inspectionError(#"{"é":1,"\u00e9":2}"#) != nil)
        #expect(inspectionError(#"{"a\nb":1,"a\u000Ab":2}"#)?.message == "duplicate key 'a?b' in the request body")
        // Different keys that look alike are fine.
        #expect(inspectionError(#"{"model":"a","Model":2,"model ":3,"mode":4,"\u006dodel2":5}"#) == nil)
        #expect(inspectionError(#"{"e\u0301":1,"é":2}"#) == nil, "keys compare by code points, not by normalisation")
    }

    @Test func duplicateKeysNested() {
        let error = inspectionError(#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":"b","role":"system"}]}"#)
        #expect(error?.message == "duplicate key 'role' in the request body at messages[1]")
        let deep = inspectionError(#"{"tools":[{"function":{"parameters":{"properties":{"x":{},"x":{}}}}}]}"#)
        #expect(deep?.message == "duplicate key 'x' in the request body at tools[0].function.parameters.properties")
        // The same key in sibling or nested objects is not a duplicate.
        #expect(inspectionError(#"{"a":{"a":{"a":1}},"b":{"a":2},"c":[{"a":1},{"a":2}]}"#) == nil)
        // Keys of a closed object do not leak into its parent.
        #expect(inspectionError(#"{"x":{"k":1},"k":2}"#) == nil)
    }

    @Test func duplicateKeysInLargeObjects() {
        var keys = (0..<2000).map { "\"key\($0)\":\($0)" }
        let distinct = "{" + keys.joined(separator: ",") + "}"
        #expect(inspectionError(distinct) == nil)
        keys.append(#""key1\u0037\u0033\u0039":0"#)  // "key1739", escaped
        #expect(inspectionError("{" + keys.joined(separator: ",") + "}")?.message == "duplicate key 'key1739' in the request body")
        // Large object nested in another large object: each has its own set.
        let inner = "{" + (0..<40).map { "\"k\($0)\":1" }.joined(separator: ",") + "}"
        let outer = "{" + (0..<40).map { "\"k\($0)\":\(inner)" }.joined(separator: ",") + "}"
        #expect(inspectionError(outer) == nil)
        let outerDuplicate = "{" + (0..<40).map { "\"k\($0)\":\(inner)" }.joined(separator: ",") + ",\"k3\":0}"
        #expect(inspectionError(outerDuplicate)?.message == "duplicate key 'k3' in the request body")
    }

    @Test func keyFloodStaysLinear() {
        // 200k distinct keys: a quadratic check would take minutes.
        var body = "{"
        body.reserveCapacity(200_000 * 12)
        for index in 0..<200_000 {
            if index > 0 { body += "," }
            body += "\"k\(index)\":0"
        }
        body += "}"
        let start = ContinuousClock.now
        #expect(inspectionError(body) == nil)
        print("200k-key object: \(ContinuousClock.now - start)")
    }

    // MARK: Depth

    @Test func depthBomb() {
        let bomb = String(repeating: "[", count: 10_000)
        #expect(inspectionError(bomb) == .notAnObject)
        let wrapped = "{\"a\":" + bomb
        let error = inspectionError(wrapped)
        #expect(error?.message == "request body nesting exceeds 64 levels")
        #expect(error == .nestingTooDeep(limit: 64, offset: 5 + 63))
        let objects = String(repeating: "{\"a\":", count: 10_000)
        #expect(inspectionError(objects)?.code == "nesting_too_deep")
    }

    @Test func depthLimitIsExactAndConfigurable() {
        func nested(_ depth: Int) -> String {  // top-level object + (depth - 1) arrays
            "{\"a\":" + String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1) + "}"
        }
        #expect(inspectionError(nested(64)) == nil)
        #expect(inspectionError(nested(65))?.message == "request body nesting exceeds 64 levels")
        #expect(inspectionError(nested(8), maxDepth: 8) == nil)
        #expect(inspectionError(nested(9), maxDepth: 8)?.message == "request body nesting exceeds 8 levels")
        #expect(inspectionError(nested(1000), maxDepth: 1000) == nil)
    }

    // MARK: Invalid JSON

    @Test(arguments: [
        ("", 0), ("   ", 3), ("{", 1), ("{\"model\"", 8), ("{\"model\":", 9), ("{\"model\":\"x", 11), ("{\"a\":1", 6),
        ("{\"a\":1,}", 7), ("{\"a\":[1,2,]}", 10), ("{,}", 1), ("{\"a\":1,,\"b\":2}", 7), ("{\"a\" 1}", 5),
        ("{\"a\":tru}", 8), ("{\"a\":nul}", 8), ("{\"a\":True}", 5), ("{\"a\":01}", 6), ("{\"a\":-}", 6), ("{\"a\":1.}", 7),
        ("{\"a\":.5}", 5), ("{\"a\":+1}", 5), ("{\"a\":1e}", 7), ("{\"a\":NaN}", 5), ("{\"a\":Infinity}", 5),
        ("{'a':1}", 1), ("{a:1}", 1), ("{\"a\":1}x", 7), ("{} {}", 3), ("{}\u{0}", 2), ("{\"a\":1}/*c*/", 7),
        ("{\"a\":\"\\x\"}", 6), ("{\"a\":\"\\u12\"}", 6), ("{\"a\":\"\\uZZZZ\"}", 6), ("{\"a\":\"\\\"}", 9),
        ("{\"a\":\"\\ud83d\"}", 6), ("{\"a\":\"\\ude00\"}", 6), ("{\"a\":\"\\ud83d\\u0041\"}", 6), ("{\"a\":\"\\ud83dx\"}", 6),
        ("{\"a\":\"\\ud83d\\ud83d\"}", 6), ("{\"\\udfff\":1}", 2),
        ("{\"a\":\"line\nbreak\"}", 10), ("{\"a\":\"tab\there\"}", 9), ("{\"a\":\"\u{1}\"}", 6), ("{\"a\":\"\u{1F}\"}", 6),
        ("{\"a\":[}", 6), ("{\"a\":{]}", 6), ("{\"a\":1]", 6), ("{\"a\":[1}", 7), ("\u{FEFF}{}", 0), ("{\u{A0}}", 1),
    ])
    func invalidJSON(body: String, offset: Int) {
        let error = inspectionError(body)
        guard case .invalidJSON(let at, _)? = error else {
            Issue.record("\(body.debugDescription) → \(String(describing: error))")
            return
        }
        #expect(at == offset, "\(body.debugDescription): \(error!.message)")
        #expect(error!.message.hasPrefix("invalid JSON at byte \(offset)"))
    }

    @Test func invalidUTF8IsRejected() {
        let cases: [[UInt8]] = [
            [0xFF], [0xC0, 0xAF], [0xC1, 0xBF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF0, 0x80, 0x80, 0xAF],
            [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xC3], [0xE2, 0x82], [0x80], [0xC3, 0x28],
        ]
        for bad in cases {
            let body = Array("{\"a\":\"x".utf8) + bad + Array("\"}".utf8)
            #expect(inspectionError(body) == .invalidJSON(offset: 7, reason: .invalidUTF8), "\(bad)")
            // Overlong or otherwise invalid bytes in a key cannot smuggle a duplicate either.
            let key = Array("{\"model\":\"a\",\"mod".utf8) + bad + Array("el\":\"b\"}".utf8)
            #expect(isInvalidJSON(key), "\(bad)")
        }
        let valid: [[UInt8]] = [[0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xF0, 0x9F, 0x98, 0x80], [0xEF, 0xBF, 0xBF], [0xF4, 0x8F, 0xBF, 0xBF], [0x7F]]
        for good in valid {
            #expect(inspectionError(Array("{\"a\":\"".utf8) + good + Array("\"}".utf8)) == nil, "\(good)")
        }
    }

    @Test func surrogatePolicy() throws {
        // Pairs are fine; lone surrogates are rejected (documented rule), wherever they are.
        #expect(inspectionError(#"{"a":"\ud83d\ude00 \uD83D\uDE00"}"#) == nil)
        #expect(inspectionError(#"{"a":"\ud83d"}"#)?.message == "invalid JSON at byte 6: unpaired UTF-16 surrogate in \\u escape")
        #expect(inspectionError(#"{"messages":[{"content":"ok \udc00"}]}"#) != nil)
        #expect(inspectionError(#"{"a":"\u0000 \uFFFF \uFFFE"}"#) == nil, "non-characters and NUL are valid escapes")
    }

    @Test func everyTruncationOfAValidBodyIsRejected() {
        for body in [ReferenceBodies.chatWithTools, ReferenceBodies.jsonMode, ReferenceBodies.reasoning, ReferenceBodies.conversation] {
            let bytes = Array(body.utf8)
            #expect(inspectionError(bytes) == nil)
            var end = bytes.count - 1
            while end > 0, bytes[end] == 0x20 || bytes[end] == 0x0A { end -= 1 }  // trailing whitespace is not content
            for cut in 0..<end {
                let prefix = Array(bytes[0..<cut])
                #expect(isInvalidJSON(prefix), "prefix of \(cut) bytes accepted")
            }
        }
    }

    @Test func randomMutationsNeverCrashAndAgreeWithFoundation() throws {
        // Differential check: for bodies without duplicate keys, lone surrogates or deep nesting, the
        // inspector accepts exactly what Foundation's parser accepts (modulo the top-level object rule).
        var random = SplitMix64(state: 0x7011_6A7E)
        let seeds = [ReferenceBodies.sdkChat, ReferenceBodies.jsonMode, ReferenceBodies.sdkFIM, #"{"a":[1,-2.5e3,true,false,null,{"b":"c\n\u00e9"}]}"#]
        let alphabet = Array(#"{}[]":,.-+eE0123456789tfnrul\ "#.utf8) + [0x00, 0x1F, 0x80, 0xC3, 0xA9, 0xFF]
        var disagreements: [String] = []
        for round in 0..<20_000 {
            var bytes = Array(seeds[round % seeds.count].utf8)
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let position = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: bytes[position] = alphabet.randomElement(using: &random)!
                case 1: bytes.remove(at: position)
                default: bytes.insert(alphabet.randomElement(using: &random)!, at: position)
                }
                if bytes.isEmpty { bytes = [0x7B] }
            }
            let ours = inspectionError(bytes)
            let foundation = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
            switch ours {
            case nil:
                if foundation == nil { disagreements.append(String(decoding: bytes, as: UTF8.self)) }
            case .invalidJSON?:
                // Foundation is more lenient in places (e.g. it may accept some invalid UTF-8 or
                // leading zeros); only count the reverse direction as a failure.
                break
            default:
                break
            }
        }
        #expect(disagreements.isEmpty, "accepted but Foundation rejects: \(disagreements.prefix(5))")
    }

    // MARK: max_tokens, n

    @Test(arguments: [
        ("", nil), (",\"max_tokens\":null", nil), (",\"max_tokens\":0", 0), (",\"max_tokens\":5", 5),
        (",\"max_tokens\":1e3", 1000), (",\"max_tokens\":5.0", 5), (",\"max_tokens\":-0", 0), (",\"max_tokens\":1.5e1", 15),
        (",\"max_tokens\":2147483647", 2_147_483_647), (",\"max_tokens\" : 7 ", 7),
    ] as [(String, Int?)])
    func acceptedMaxTokens(field: String, expected: Int?) throws {
        let request = try inspect("{\"model\":\"m\"\(field)}")
        #expect(request.maxTokens == expected)
    }

    @Test(arguments: [
        "-1", "1.5", "\"5\"", "true", "[]", "{}", "-1e3", "1e-1", "0.5", "1e400", "2147483648", "99999999999999999999999",
    ])
    func rejectedMaxTokens(value: String) {
        let error = inspectionError("{\"model\":\"m\",\"max_tokens\":\(value)}")
        #expect(error?.code == "invalid_field")
        #expect(error?.message.hasPrefix("'max_tokens' must be a non-negative integer") == true, "\(String(describing: error))")
    }

    @Test func maxTokensMessageIsExact() {
        #expect(inspectionError(#"{"max_tokens":-1}"#)?.message == "'max_tokens' must be a non-negative integer")
        #expect(inspectionError(#"{"max_tokens":1.5}"#)?.message == "'max_tokens' must be a non-negative integer")
        #expect(inspectionError(#"{"max_tokens":"5"}"#)?.message == "'max_tokens' must be a non-negative integer")
        #expect(inspectionError(#"{"completion_args":{"max_tokens":-3}}"#)?.message == "'completion_args.max_tokens' must be a non-negative integer")
    }

    @Test func nValues() throws {
        #expect(try inspect(#"{"n":1}"#).n == 1)
        #expect(try inspect(#"{"n":3}"#).choices == 3)
        #expect(try inspect(#"{"n":null}"#).n == nil)
        #expect(try inspect(#"{"n":2.0}"#).n == 2)
        for bad in ["0", "-1", "1.5", "\"2\"", "false"] {
            #expect(inspectionError("{\"n\":\(bad)}")?.message == "'n' must be an integer of at least 1", "\(bad)")
        }
    }

    @Test func nestedMaxTokensIsOnlyReadInCompletionArgs() throws {
        // A `max_tokens` key elsewhere is someone else's business (e.g. inside a JSON schema).
        let request = try inspect(#"{"metadata":{"max_tokens":"x"},"messages":[{"role":"user","content":"x","max_tokens":-1}]}"#)
        #expect(request.maxTokens == nil && request.completionArgsMaxTokens == nil)
    }

    // MARK: max_tokens injection

    private func injected(_ body: String, _ value: Int) throws -> (String, InspectedRequest, InspectedRequest) {
        let original = try inspect(body)
        let bytes = try #require(MaxTokensInjection.inject(maxTokens: value, into: Array(body.utf8), inspected: original))
        let text = String(decoding: bytes, as: UTF8.self)
        let again = try inspector.inspect(bytes)
        return (text, original, again)
    }

    @Test func injectionWhenAbsent() throws {
        let (text, original, again) = try injected(ReferenceBodies.sdkChat, 4096)
        #expect(text == #"{"max_tokens":4096,"model":"mistral-small-latest","messages":[{"content":"hi","role":"user"}],"stream":false}"#)
        #expect(again.maxTokens == 4096)
        var expected = original
        expected.maxTokens = 4096
        expected.bodyLength = again.bodyLength
        expected.injectionPoint = again.injectionPoint
        expected.promptTokensUpperBound = again.promptTokensUpperBound
        #expect(again == expected)
        #expect(again.promptTokensUpperBound == original.promptTokensUpperBound)
        #expect(MaxTokensInjection.inject(maxTokens: 1, into: Array(text.utf8), inspected: again) == nil)
    }

    @Test func injectionWhenNullAndEdgeShapes() throws {
        let (nullText, _, nullAgain) = try injected(ReferenceBodies.jsonMode, 77)
        #expect(nullText == ReferenceBodies.jsonMode.replacingOccurrences(of: "\"max_tokens\":null", with: "\"max_tokens\":77"))
        #expect(nullAgain.maxTokens == 77 && nullAgain.stream)

        #expect(try injected("{}", 0).0 == #"{"max_tokens":0}"#)
        #expect(try injected(" { \n } ", 5).0 == " {\"max_tokens\":5 \n } ")
        #expect(try injected("\n{\"model\":\"m\"}\n", 12).0 == "\n{\"max_tokens\":12,\"model\":\"m\"}\n")
        #expect(try injected(#"{"max_tokens" : null , "a":1}"#, 9).0 == #"{"max_tokens" : 9 , "a":1}"#)
        #expect(try injected(#"{"m\u0061x_tokens":null}"#, 3).0 == #"{"m\u0061x_tokens":3}"#, "an escaped key is the same key")
        // A nested max_tokens is not the top-level one.
        #expect(try injected(#"{"completion_args":{"max_tokens":null}}"#, 3).0 == #"{"max_tokens":3,"completion_args":{"max_tokens":null}}"#)

        let present = try inspect(#"{"max_tokens":10}"#)
        #expect(MaxTokensInjection.inject(maxTokens: 5, into: ByteBuffer(string: #"{"max_tokens":10}"#), inspected: present) == nil)
    }

    @Test func injectionIntoByteBufferKeepsEveryOtherByte() throws {
        var random = SplitMix64(state: 42)
        for body in [ReferenceBodies.chatWithTools.replacingOccurrences(of: "\"max_tokens\": 512,", with: ""),
                     ReferenceBodies.reasoning, ReferenceBodies.sdkFIM, ReferenceBodies.jsonMode] {
            var buffer = ByteBuffer(string: "garbage-before")
            buffer.moveReaderIndex(forwardBy: 14)  // the inspector reads the readable bytes only
            buffer.writeString(body)
            let inspected = try inspector.inspect(buffer)
            let value = Int.random(in: 0...1_000_000, using: &random)
            let output = try #require(MaxTokensInjection.inject(maxTokens: value, into: buffer, inspected: inspected))
            let text = String(buffer: output)
            #expect(try inspector.inspect(output).maxTokens == value)
            // Removing the edit gives the original back, byte for byte.
            let restored = text.replacingOccurrences(of: "\"max_tokens\":\(value),", with: "")
                .replacingOccurrences(of: "\"max_tokens\":\(value)", with: "\"max_tokens\":null")
            #expect(restored == body)
            // Foundation agrees on the result.
            let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            #expect(object["max_tokens"] as? Int == value)
        }
    }

    // MARK: Prompt-token bound

    @Test func boundCoversTheBytesOfEveryText() throws {
        let samples = [
            "Hello, world!", "", "Ünïcödé façade — naïve café", "日本語のテキストは一文字三バイトです。", "emoji 😀🎉👩‍👩‍👧‍👦 flags 🇫🇷🇩🇪",
            "line\nbreaks\tand \"quotes\" and \\backslashes\\", String(repeating: "a", count: 10_000), "\u{0}\u{1}\u{1F}",
            String(repeating: "ﷺ", count: 1000),
        ]
        for text in samples {
            let body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\(jsonString(text))}]}"
            let request = try inspect(body)
            #expect(request.promptTokensUpperBound >= text.utf8.count, "\(text.prefix(20))")
            #expect(request.promptTokensUpperBound >= text.unicodeScalars.count)
            let fim = try inspect("{\"model\":\"m\",\"prompt\":\(jsonString(text)),\"suffix\":\(jsonString(text))}")
            #expect(fim.promptTokensUpperBound >= 2 * text.utf8.count)
            let embed = try inspect("{\"model\":\"m\",\"input\":[\(jsonString(text)),\(jsonString(text))]}")
            #expect(embed.promptTokensUpperBound >= 2 * text.utf8.count)
        }
        // Escaped text: the decoded bytes are fewer than the raw ones, never more.
        let escaped = try inspect(#"{"messages":[{"content":"\u65e5\u672c\ud83d\ude00"}]}"#)
        #expect(escaped.promptTokensUpperBound >= "日本😀".utf8.count)
    }

    @Test func boundIsAboveTheMockTokenizerForRandomChats() throws {
        let mock = MockMistral()
        var random = SplitMix64(state: 0xB0B)
        let pieces = ["hello", " ", "wörld", "日本", "😀", "\n", "\"", "\\", "tab\t", "x", "{\"k\":1}", "🇫🇷"]
        for round in 0..<300 {
            var messages: [[String: Any]] = []
            for index in 0..<Int.random(in: 1...6, using: &random) {
                let text = (0..<Int.random(in: 0...40, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
                messages.append(["role": index % 2 == 0 ? "user" : "assistant", "content": text])
            }
            messages.append(["role": "user", "content": "go"])
            var object: [String: Any] = ["model": "mistral-small-latest", "messages": messages]
            if round % 3 == 0 {
                object["tools"] = [["type": "function", "function": ["name": "f\(round)", "description": "d😀", "parameters": ["type": "object", "properties": ["a": ["type": "string"]]]]]]
            }
            let data = try JSONSerialization.data(withJSONObject: object)
            let request = try inspector.inspect(Array(data))
            let predicted = try mock.usage(forChatBody: Array(data))
            #expect(request.promptTokensUpperBound >= predicted.promptTokens)
            let textBytes = messages.reduce(0) { $0 + (($1["content"] as? String)?.utf8.count ?? 0) }
            #expect(request.promptTokensUpperBound >= textBytes + messages.count)
        }
        let fim = Array(ReferenceBodies.sdkFIM.utf8)
        #expect(try inspector.inspect(fim).promptTokensUpperBound >= mock.usage(forFIMBody: fim).promptTokens)
        let embeddings = Array(ReferenceBodies.sdkEmbeddings.utf8)
        #expect(try inspector.inspect(embeddings).promptTokensUpperBound >= mock.usage(forEmbeddingsBody: embeddings).promptTokens)
    }

    @Test func boundRuleComponents() throws {
        let rule = PromptTokenBoundRule(requestOverhead: 100, tokensPerMessage: 10, tokensPerImage: 1000, tokensPerDocument: 5000,
                                        safePromptAllowance: 7, promptModeAllowance: 11)
        let custom = RequestInspector(promptTokenBound: rule)
        let empty = try custom.inspect(Array(#"{"model":"m"}"#.utf8))
        #expect(empty.promptTokensUpperBound == 100)
        // 2 messages, raw `[{"content":"ab"},{"content":"c"}]` = 34 bytes, 2 colons + 1 comma.
        let two = try custom.inspect(Array(#"{"messages":[{"content":"ab"},{"content":"c"}]}"#.utf8))
        #expect(two.promptTokensUpperBound == 100 + 34 + 3 + 20)
        let media = try custom.inspect(Array(#"{"messages":[{"content":[{"type":"image_url","image_url":"https://x/y.png"},{"type":"document_url","document_url":"https://x/y.pdf"},{"type":"file","file_id":"f"}]}],"safe_prompt":true,"prompt_mode":"reasoning"}"#.utf8))
        #expect(media.imageCount == 1 && media.documentCount == 2 && media.safePrompt)
        let raw = #"[{"content":[{"type":"image_url","image_url":"https://x/y.png"},{"type":"document_url","document_url":"https://x/y.pdf"},{"type":"file","file_id":"f"}]}]"#.utf8.count
        let mediaBytes = #""https://x/y.png""#.utf8.count + #""https://x/y.pdf""#.utf8.count + #""f""#.utf8.count
        let colonsAndCommas = #"[{"content":[{"type":"image_url","image_url":"https://x/y.png"},{"type":"document_url","document_url":"https://x/y.pdf"},{"type":"file","file_id":"f"}]}]"#
            .filter { $0 == ":" || $0 == "," }.count - 2  // two ':' inside the URLs are string content
        #expect(media.promptTokensUpperBound == 100 + raw - mediaBytes + colonsAndCommas + 10 + 1000 + 2 * 5000 + 7 + 11)
        // Non-prompt fields do not count.
        let other = try custom.inspect(Array(#"{"metadata":{"note":"a very long note that is not sent to the model"},"temperature":0.5}"#.utf8))
        #expect(other.promptTokensUpperBound == 100)
    }

    // MARK: Benchmark (printed only)

    @Test func printsNanosecondsPerInspection() throws {
        var body = #"{"model":"mistral-small-latest","messages":["#
        var index = 0
        while body.utf8.count < 1900 {
            if index > 0 { body += "," }
            body += #"{"role":"\#(index % 2 == 0 ? "user" : "assistant")","content":"Message number \#(index): the quick brown fox jumps over the lazy dog, caf\u00e9 \ud83d\ude00."}"#
            index += 1
        }
        body += #"],"temperature":0.7,"stream":true}"#
        let bytes = Array(body.utf8)
        let iterations = 20_000
        var sink = 0
        let start = ContinuousClock.now
        for _ in 0..<iterations {
            sink &+= try inspector.inspect(bytes).promptTokensUpperBound
        }
        let elapsed = ContinuousClock.now - start
        let nanos = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        print("RequestInspector: \(bytes.count)-byte chat body: \(Int(nanos / Double(iterations))) ns/op (this build's optimisation level) [\(sink)]")
        let inspected = try inspector.inspect(bytes)
        let injectStart = ContinuousClock.now
        for _ in 0..<iterations {
            sink &+= MaxTokensInjection.inject(maxTokens: 4096, into: bytes, inspected: inspected)?.count ?? 0
        }
        let injectElapsed = ContinuousClock.now - injectStart
        let injectNanos = Double(injectElapsed.components.seconds) * 1e9 + Double(injectElapsed.components.attoseconds) / 1e9
        print("MaxTokensInjection: \(Int(injectNanos / Double(iterations))) ns/op [\(sink)]")
    }
}
