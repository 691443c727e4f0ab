import AsyncHTTPClient
import Foundation
import MockMistral
import NIOCore
import Testing
import TollgateDomain
@testable import TollgateProxy

private func usage(_ body: String) -> Usage? {
    UsageExtractor.usage(fromJSON: Array(body.utf8))
}

/// Everything an `SSEUsageScanner` reports, for comparing runs.
private struct ScanSummary: Hashable, CustomStringConvertible {
    var usage: Usage?
    var finishReason: String?
    var sawDone: Bool
    var sawTerminalEvent: Bool
    var sawError: Bool
    var completionTextBytes: Int
    var eventCount: Int
    var lastEventEnd: Int
    var bytesScanned: Int
    var endedMidEvent: Bool
    var lastEventType: String?

    init(_ scanner: SSEUsageScanner) {
        usage = scanner.usage
        finishReason = scanner.finishReason
        sawDone = scanner.sawDone
        sawTerminalEvent = scanner.sawTerminalEvent
        sawError = scanner.sawError
        completionTextBytes = scanner.completionTextBytes
        eventCount = scanner.eventCount
        lastEventEnd = scanner.lastEventEnd
        bytesScanned = scanner.bytesScanned
        endedMidEvent = scanner.endedMidEvent
        lastEventType = scanner.lastEventType
    }

    var description: String {
        "usage=\(String(describing: usage)) finish=\(finishReason ?? "nil") done=\(sawDone) terminal=\(sawTerminalEvent) error=\(sawError) text=\(completionTextBytes) events=\(eventCount) end=\(lastEventEnd)/\(bytesScanned) cut=\(endedMidEvent) type=\(lastEventType ?? "nil")"
    }
}

/// Feeds `stream` in the given chunk sizes (then the rest), returning the summary and every
/// `lastEventEnd` value observed after a feed.
private func scan(_ stream: [UInt8], chunks sizes: [Int] = [], maxEventDataBytes: Int = 16 << 20) -> (ScanSummary, Set<Int>) {
    var scanner = SSEUsageScanner(maxEventDataBytes: maxEventDataBytes)
    var boundaries: Set<Int> = []
    var offset = 0
    for size in sizes where offset < stream.count {
        let end = min(stream.count, offset + size)
        scanner.feed(Array(stream[offset..<end]))
        boundaries.insert(scanner.lastEventEnd)
        offset = end
    }
    if offset < stream.count {
        scanner.feed(Array(stream[offset...]))
        boundaries.insert(scanner.lastEventEnd)
    }
    scanner.finish()
    boundaries.insert(scanner.lastEventEnd)
    boundaries.remove(0)
    return (ScanSummary(scanner), boundaries)
}

private func scan(_ stream: String) -> ScanSummary { scan(Array(stream.utf8)).0 }

/// Asserts that every way of cutting `stream` in two, feeding it byte by byte, and random
/// chunkings all give the same results as feeding it whole.
private func expectSplitInvariant(_ stream: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> ScanSummary {
    let (whole, _) = scan(stream)
    for cut in 0...stream.count {
        let (split, _) = scan(stream, chunks: [cut])
        if split != whole {
            Issue.record("split at \(cut) differs: \(split) vs \(whole)", sourceLocation: sourceLocation)
            return whole
        }
    }
    let (bytewise, boundaries) = scan(stream, chunks: Array(repeating: 1, count: stream.count))
    #expect(bytewise == whole, sourceLocation: sourceLocation)
    // Feeding byte by byte observes every boundary; whole-stream feeding observes the last one.
    #expect(boundaries.max() == whole.lastEventEnd || boundaries.isEmpty, sourceLocation: sourceLocation)
    var random = SplitMix64Metering(state: UInt64(stream.count))
    for _ in 0..<50 {
        let sizes = (0..<40).map { _ in Int.random(in: 1...17, using: &random) }
        let (chunked, _) = scan(stream, chunks: sizes)
        #expect(chunked == whole, sourceLocation: sourceLocation)
    }
    return whole
}

private struct SplitMix64Metering: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// Streams from the reference (/work/shared/mistral-api.md §5).
private enum ReferenceStreams {
    static let live2026 = """
    data: {"id":"b5810ef13dbb4811a20d34e1393d8431","object":"chat.completion.chunk","created":1787865810,"model":"mistral-small-latest","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

    data: {"id":"b5810ef13dbb4811a20d34e1393d8431","object":"chat.completion.chunk","created":1787865810,"model":"mistral-small-latest","choices":[{"index":0,"delta":{"content":"OK"},"finish_reason":null}],"p":"abcdefghijklmnopqrstuvwxyz0123456789"}

    data: {"id":"b5810ef13dbb4811a20d34e1393d8431","object":"chat.completion.chunk","created":1787865810,"model":"mistral-small-latest","choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"total_tokens":21,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":0},"service_tier":"standard"},"p":"abcdef"}

    data: [DONE]


    """

    static let toolCall = """
    data: {"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

    data: {"id":"1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":null,"tool_calls":[{"id":"gSIMJiOkT","function":{"name":"weather","arguments":"{\\"location\\": \\"San Francisco\\"}"}}]},"finish_reason":"tool_calls","logprobs":null}],"usage":{"prompt_tokens":80,"total_tokens":100,"completion_tokens":20}}

    data: [DONE]


    """

    /// OpenAI-style incremental tool calls (hosted third-party models), usage with cached tokens.
    static let incrementalToolCall = """
    data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"abcdefghi","type":"function","function":{"name":"get","arguments":""}}]},"finish_reason":null}]}

    data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\":"}}]},"finish_reason":null}]}

    data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"finish_reason":null}]}

    data: {"choices":[{"index":0,"delta":{"index":0,"content":""},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":300,"completion_tokens":12,"total_tokens":312,"prompt_tokens_details":{"cached_tokens":128}}}

    data: [DONE]


    """

    static let magistral = """
    data: {"choices":[{"index":0,"delta":{"role":"assistant","content":[{"type":"thinking","thinking":[{"type":"text","text":"The user is asking"}]}]},"finish_reason":null}]}

    data: {"choices":[{"index":0,"delta":{"content":[{"type":"text","text":"2 + 2 = 4"}]},"finish_reason":null}]}

    data: {"choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":9,"total_tokens":19}}

    data: [DONE]


    """

    static let conversation = """
    event: conversation.response.started
    data: {"type":"conversation.response.started","conversation_id":"conv_1","created_at":"2026-01-01T00:00:00Z"}

    event: message.output.delta
    data: {"type":"message.output.delta","output_index":0,"id":"msg_1","content_index":0,"content":"Bonjour","role":"assistant"}

    event: message.output.delta
    data: {"type":"message.output.delta","output_index":0,"id":"msg_1","content_index":0,"content":" à tous","role":"assistant"}

    event: function.call.delta
    data: {"type":"function.call.delta","id":"fc_1","name":"f","tool_call_id":"abcdefghi","arguments":"{}"}

    event: conversation.response.done
    data: {"type":"conversation.response.done","usage":{"prompt_tokens":21,"completion_tokens":4,"total_tokens":25,"connector_tokens":null,"connectors":null},"created_at":"2026-01-01T00:00:01Z"}


    """
}

@Suite("Metering")
struct MeteringTests {
    // MARK: Non-streaming usage

    @Test func referenceBodies() {
        // §4.1 live chat
        #expect(usage(#"{"id":"a2984449b4204304a731f30927977d5c","created":1787865809,"model":"mistral-small-latest","usage":{"prompt_tokens":19,"total_tokens":21,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":0},"service_tier":"standard"},"object":"chat.completion","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","tool_calls":null,"content":"OK"}}]}"#)
                == Usage(promptTokens: 19, completionTokens: 2))
        // §4.2 FIM
        #expect(usage(#"{"id":"447e3e0d457e42e98248b5d2ef52a2a3","object":"chat.completion","model":"codestral-2508","usage":{"prompt_tokens":8,"completion_tokens":91,"total_tokens":99},"created":1759496862,"choices":[{"index":0,"message":{"content":"…","tool_calls":null,"prefix":false,"role":"assistant"},"finish_reason":"stop"}]}"#)
                == Usage(promptTokens: 8, completionTokens: 91))
        // §4.3 embeddings (live, with nulls)
        #expect(usage(#"{"id":"fe87621011b544829fe9f966488f3d84","object":"list","data":[{"object":"embedding","embedding":[-0.0389404296875,0.048065185546875],"index":0}],"model":"mistral-embed","usage":{"prompt_audio_seconds":null,"prompt_tokens":16,"total_tokens":16,"completion_tokens":0,"request_count":null,"prompt_tokens_details":null,"prompt_token_details":null}}"#)
                == Usage(promptTokens: 16))
        // §4.5 moderation, transcription, OCR
        #expect(usage(#"{"id":"203503b5","usage":{"prompt_audio_seconds":null,"prompt_tokens":123,"total_tokens":212,"completion_tokens":0,"request_count":1,"prompt_token_details":null},"model":"mistral-moderation-2603","results":[{"category_scores":{"sexual":0.01},"categories":{"sexual":false}}]}"#)
                == Usage(promptTokens: 123))
        #expect(usage(#"{"model":"voxtral-mini-latest","text":"Hi","language":"en","segments":[{"type":"transcription_segment","text":"Hi","start":0.0,"end":1.5,"speaker_id":null}],"usage":{"prompt_audio_seconds":36,"prompt_tokens":13,"completion_tokens":151,"total_tokens":164,"request_count":1,"num_cached_tokens":0}}"#)
                == Usage(promptTokens: 13, completionTokens: 151))
        #expect(usage(##"{"pages":[{"index":0,"markdown":"# Page 1","images":[],"dimensions":{"dpi":200,"height":2200,"width":1700}}],"model":"mistral-ocr-latest","document_annotation":null,"usage_info":{"pages_processed":3,"doc_size_bytes":12345}}"##)
                == Usage(pages: 3))
        // Conversations
        #expect(usage(#"{"object":"conversation.response","conversation_id":"conv_1","outputs":[{"object":"entry","type":"message.output","content":"Hi","role":"assistant"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"connector_tokens":null,"connectors":null}}"#)
                == Usage(promptTokens: 10, completionTokens: 5))
        // Responses API spelling
        #expect(usage(#"{"id":"resp_1","output":[],"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":64},"output_tokens":3,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":13}}"#)
                == Usage(promptTokens: 10, completionTokens: 3, cachedTokens: 64))
    }

    @Test func cachedTokenSpellings() {
        #expect(usage(#"{"usage":{"prompt_tokens":1000,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":640}}}"#)?.cachedTokens == 640)
        #expect(usage(#"{"usage":{"prompt_tokens":1000,"completion_tokens":1,"prompt_token_details":{"cached_tokens":512}}}"#)?.cachedTokens == 512)
        #expect(usage(#"{"usage":{"prompt_tokens":1000,"completion_tokens":1,"num_cached_tokens":256}}"#)?.cachedTokens == 256)
        #expect(usage(#"{"usage":{"num_cached_tokens":64,"prompt_token_details":{"cached_tokens":128},"prompt_tokens_details":{"cached_tokens":192},"prompt_tokens":1000,"completion_tokens":1}}"#)?.cachedTokens == 192)
        #expect(usage(#"{"usage":{"prompt_tokens":1000,"completion_tokens":1,"prompt_tokens_details":null,"prompt_token_details":{"cached_tokens":64}}}"#)?.cachedTokens == 64)
        #expect(usage(#"{"usage":{"prompt_tokens":1000,"completion_tokens":1,"prompt_tokens_details":{"audio_tokens":5}}}"#)?.cachedTokens == 0)
    }

    @Test func missingOrUnusableUsage() {
        for body in [
            #"{"object":"error","message":"Rate limit exceeded","type":"rate_limited","param":null,"code":"1300"}"#,
            #"{"object":"list","data":[{"id":"mistral-small-latest","object":"model"}]}"#,
            #"{"id":"x","usage":null,"choices":[]}"#, #"{"usage":{}}"#, #"{"usage":"none"}"#, #"{"usage":[1,2]}"#,
            #"{"data":{"usage":{"prompt_tokens":5,"completion_tokens":1}}}"#,
            #"{"choices":[{"message":{"content":"{\"usage\":{\"prompt_tokens\":999}}"}}]}"#,
            #"{"choices":[{"message":{"content":"\\\"usage\":{\"prompt_tokens\":999}}"}}]}"#,
            "", "   ", "[]", "null", "not json", "{", #"{"usage":{"prompt_tokens":"#, #"{"usage""#,
        ] {
            #expect(usage(body) == nil, "\(body)")
        }
    }

    @Test func usageInsideStringsAndNestedObjectsIsIgnored() {
        // The fast path from the end sees a nested object's usage last; it must not take it.
        #expect(usage(#"{"usage":{"prompt_tokens":1,"completion_tokens":2},"outputs":[{"usage":{"prompt_tokens":99,"completion_tokens":99}}]}"#)
                == Usage(promptTokens: 1, completionTokens: 2))
        #expect(usage(#"{"meta":{"usage":{"prompt_tokens":99}},"usage":{"prompt_tokens":3,"completion_tokens":4}}"#)
                == Usage(promptTokens: 3, completionTokens: 4))
        #expect(usage(#"{"text":"}\"usage\":{\"prompt_tokens\":99}}","usage":{"prompt_tokens":5,"completion_tokens":6}}"#)
                == Usage(promptTokens: 5, completionTokens: 6))
        #expect(usage(#"{"usage":{"prompt_tokens":7,"completion_tokens":8},"text":"\\","x":"\\\"usage\\\":{}"}"#)
                == Usage(promptTokens: 7, completionTokens: 8))
        // Whitespace everywhere, odd number formats.
        #expect(usage(" {\n \"usage\" : {\n \"prompt_tokens\" : 12.0 ,\"completion_tokens\":-1, \"total_tokens\": 1e1 } \n} \n")
                == Usage(promptTokens: 12, completionTokens: 0))
        // Mistral never sends both; when `usage_info` comes first, `usage` wins.
        #expect(usage(#"{"usage_info":{"pages_processed":2},"usage":{"prompt_tokens":5,"completion_tokens":1}}"#)
                == Usage(promptTokens: 5, completionTokens: 1))
        #expect(usage(#"{"usage":null,"usage_info":{"pages_processed":2}}"#) == Usage(pages: 2))
    }

    @Test func largeEmbeddingsBodiesAreCheap() {
        // ~3.3 MB of vectors, usage last (the live key order), then usage first, then usage in the middle.
        var vector = "["
        for index in 0..<1024 {
            if index > 0 { vector += "," }
            vector += String(format: "%.16f", Double(index % 97) / 97.0 - 0.5)
        }
        vector += "]"
        var data = "["
        for index in 0..<150 {
            if index > 0 { data += "," }
            data += #"{"object":"embedding","embedding":\#(vector),"index":\#(index)}"#
        }
        data += "]"
        let usageJSON = #"{"prompt_audio_seconds":null,"prompt_tokens":1500,"total_tokens":1500,"completion_tokens":0,"request_count":null,"prompt_tokens_details":null,"prompt_token_details":null}"#
        let bodies = [
            ("usage last", #"{"id":"fe87621011b544829fe9f966488f3d84","object":"list","data":\#(data),"model":"mistral-embed","usage":\#(usageJSON)}"#),
            ("usage first", #"{"usage":\#(usageJSON),"id":"x","object":"list","data":\#(data),"model":"mistral-embed"}"#),
            ("usage after data", #"{"id":"x","object":"list","data":\#(data),"usage":\#(usageJSON),"model":"mistral-embed"}"#),
        ]
        for (name, body) in bodies {
            let bytes = Array(body.utf8)
            let start = ContinuousClock.now
            var result: Usage?
            for _ in 0..<10 { result = UsageExtractor.usage(fromJSON: bytes) }
            let elapsed = (ContinuousClock.now - start) / 10
            #expect(result == Usage(promptTokens: 1500), "\(name)")
            print("UsageExtractor: \(bytes.count / 1024) KB embeddings body, \(name): \(elapsed) per body")
        }
    }

    // MARK: SSE

    @Test func referenceStreamAtEverySplit() {
        let summary = expectSplitInvariant(Array(ReferenceStreams.live2026.utf8))
        #expect(summary.usage == Usage(promptTokens: 19, completionTokens: 2))
        #expect(summary.finishReason == "stop")
        #expect(summary.sawDone && !summary.sawTerminalEvent && !summary.sawError)
        #expect(summary.completionTextBytes == 2)
        #expect(summary.eventCount == 4)
        #expect(summary.lastEventEnd == ReferenceStreams.live2026.utf8.count)
        #expect(!summary.endedMidEvent)
    }

    @Test func boundariesAreEventEnds() {
        let stream = Array(ReferenceStreams.live2026.utf8)
        let (_, boundaries) = scan(stream, chunks: Array(repeating: 1, count: stream.count))
        var expected: Set<Int> = []
        for index in 1..<stream.count where stream[index] == 0x0A && stream[index - 1] == 0x0A { expected.insert(index + 1) }
        #expect(boundaries == expected)
        // Each prefix up to a boundary is a whole number of events.
        for boundary in boundaries {
            let prefix = String(decoding: stream[0..<boundary], as: UTF8.self)
            #expect(prefix.hasSuffix("\n\n"))
        }
    }

    @Test func crlfAndCRStreams() {
        let lf = ReferenceStreams.live2026
        let reference = scan(lf)
        for terminator in ["\r\n", "\r"] {
            let stream = Array(lf.replacingOccurrences(of: "\n", with: terminator).utf8)
            let summary = expectSplitInvariant(stream)
            #expect(summary.usage == reference.usage)
            #expect(summary.finishReason == "stop" && summary.sawDone && summary.completionTextBytes == 2)
            #expect(summary.eventCount == 4)
        }
        // CRLF boundaries never split the CRLF: the boundary is after the LF.
        let crlf = Array(lf.replacingOccurrences(of: "\n", with: "\r\n").utf8)
        let (_, boundaries) = scan(crlf, chunks: Array(repeating: 1, count: crlf.count))
        for boundary in boundaries {
            #expect(crlf[boundary - 1] == 0x0A && crlf[boundary - 2] == 0x0D)
        }
        // Mixed terminators.
        let mixed = "data: {\"choices\":[{\"delta\":{\"content\":\"ab\"}}]}\r\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"c\"},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":3}}\n\r\ndata: [DONE]\r\r"
        let summary = expectSplitInvariant(Array(mixed.utf8))
        #expect(summary.completionTextBytes == 3 && summary.sawDone && summary.finishReason == "length" && summary.eventCount == 3)
        #expect(summary.usage == Usage(promptTokens: 1, completionTokens: 3))
    }

    @Test func toolCallsAndReasoningStreams() {
        let tool = expectSplitInvariant(Array(ReferenceStreams.toolCall.utf8))
        #expect(tool.finishReason == "tool_calls")
        #expect(tool.usage == Usage(promptTokens: 80, completionTokens: 20))
        #expect(tool.completionTextBytes == "weather".utf8.count + #"{"location": "San Francisco"}"#.utf8.count)

        let incremental = expectSplitInvariant(Array(ReferenceStreams.incrementalToolCall.utf8))
        #expect(incremental.usage == Usage(promptTokens: 300, completionTokens: 12, cachedTokens: 128))
        #expect(incremental.completionTextBytes == "get".utf8.count + #"{"a":1}"#.utf8.count)

        let magistral = expectSplitInvariant(Array(ReferenceStreams.magistral.utf8))
        #expect(magistral.completionTextBytes == "The user is asking".utf8.count + "2 + 2 = 4".utf8.count)
        #expect(magistral.usage == Usage(promptTokens: 10, completionTokens: 9))
    }

    @Test func conversationTypedStream() {
        let summary = expectSplitInvariant(Array(ReferenceStreams.conversation.utf8))
        #expect(summary.usage == Usage(promptTokens: 21, completionTokens: 4))
        #expect(summary.sawTerminalEvent && !summary.sawDone && summary.isCompleteLike)
        #expect(summary.completionTextBytes == "Bonjour".utf8.count + " à tous".utf8.count + "{}".utf8.count)
        #expect(summary.lastEventType == "conversation.response.done")
        #expect(summary.finishReason == nil)
        // Without `event:` lines the data's `type` decides.
        let dataOnly = ReferenceStreams.conversation.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("event:") }.joined(separator: "\n")
        let fromData = scan(dataOnly)
        #expect(fromData.usage == summary.usage && fromData.completionTextBytes == summary.completionTextBytes && fromData.sawTerminalEvent)
    }

    @Test func responsesAndTranscriptionStreams() {
        let responses = """
        event: response.created
        data: {"type":"response.created","response":{"id":"r","usage":null}}

        event: response.output_text.delta
        data: {"type":"response.output_text.delta","delta":"Hi there"}

        event: response.completed
        data: {"type":"response.completed","response":{"id":"r","output":[{"content":[{"text":"Hi there"}]}],"usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}}


        """
        let summary = expectSplitInvariant(Array(responses.utf8))
        #expect(summary.usage == Usage(promptTokens: 5, completionTokens: 2))
        #expect(summary.completionTextBytes == 8 && summary.sawTerminalEvent)

        let transcription = """
        event: transcription.language
        data: {"type":"transcription.language","audio_language":"en"}

        event: transcription.text.delta
        data: {"type":"transcription.text.delta","text":"Hello"}

        event: transcription.text.delta
        data: {"type":"transcription.text.delta","text":" world"}

        event: transcription.done
        data: {"type":"transcription.done","text":"Hello world","usage":{"prompt_audio_seconds":2,"prompt_tokens":4,"completion_tokens":3,"total_tokens":7}}


        """
        let done = expectSplitInvariant(Array(transcription.utf8))
        #expect(done.completionTextBytes == 11, "the full text in transcription.done is not counted again")
        #expect(done.usage == Usage(promptTokens: 4, completionTokens: 3) && done.sawTerminalEvent)
    }

    @Test func lastUsageWinsAndNullUsageDoesNotErase() {
        let stream = """
        data: {"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}],"usage":{"prompt_tokens":5,"completion_tokens":1}}

        data: {"choices":[],"usage":null}

        data: {"choices":[{"index":0,"delta":{"content":"bc"},"finish_reason":"stop"},{"index":1,"delta":{"content":"de"},"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":9}}

        data: {"choices":[],"usage":null}

        data: [DONE]


        """
        let summary = expectSplitInvariant(Array(stream.utf8))
        #expect(summary.usage == Usage(promptTokens: 5, completionTokens: 9))
        #expect(summary.finishReason == "length", "the last non-null finish_reason")
        #expect(summary.completionTextBytes == 5, "all choices count (n > 1)")
    }

    @Test func commentsFieldsAndMultilineData() {
        let stream = """
        : keep-alive

        retry: 1000
        id: 1
        data: {"choices":[{"delta":{"content":
        data: "line1\\nline2 é"}}]}

        :comment between
        data:{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":3}}
        unknownfield: whatever
        data

        data: not json at all

        data: [DONE]


        """
        let summary = expectSplitInvariant(Array(stream.utf8))
        #expect(summary.completionTextBytes == "line1\nline2 é".utf8.count + 1)
        #expect(summary.usage == Usage(promptTokens: 2, completionTokens: 3))
        #expect(summary.eventCount == 4)
        #expect(summary.sawDone)
    }

    @Test func streamWithoutUsageAndCutStreams() {
        let noUsage = ReferenceStreams.live2026
            .replacingOccurrences(of: #","usage":{"prompt_tokens":19,"total_tokens":21,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":0},"service_tier":"standard"}"#, with: "")
            .replacingOccurrences(of: "data: [DONE]\n\n", with: "")
        let without = expectSplitInvariant(Array(noUsage.utf8))
        #expect(without.usage == nil && without.finishReason == "stop" && !without.sawDone && without.completionTextBytes == 2)

        // Cut inside the final (usage) event: its data is not complete, so nothing from it counts.
        let full = Array(ReferenceStreams.live2026.utf8)
        let usageEventStart = String(decoding: full, as: UTF8.self).range(of: "data: {\"id\":\"b5810ef13dbb4811a20d34e1393d8431\",\"object\":\"chat.completion.chunk\",\"created\":1787865810,\"model\":\"mistral-small-latest\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]")!.lowerBound.utf16Offset(in: ReferenceStreams.live2026)
        for cut in [usageEventStart + 10, usageEventStart + 200, full.count - 20] {
            let (summary, _) = scan(Array(full[0..<cut]))
            #expect(summary.usage == nil, "cut at \(cut)")
            #expect(summary.endedMidEvent && !summary.sawDone)
            #expect(summary.completionTextBytes == 2)
            #expect(summary.lastEventEnd == usageEventStart)
        }
        // Cut right after the usage event's data line but before its blank line: still incomplete.
        let dataLineEnd = String(decoding: full, as: UTF8.self).range(of: "\"p\":\"abcdef\"}\n")!.upperBound.utf16Offset(in: ReferenceStreams.live2026)
        let (unterminated, _) = scan(Array(full[0..<dataLineEnd]))
        #expect(unterminated.usage == nil && unterminated.endedMidEvent)
        // A blank line ending in CR at the very end is dispatched by finish().
        let crEnd = Array("data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\r\r".utf8)
        let (crSummary, _) = scan(crEnd)
        #expect(crSummary.usage == Usage(promptTokens: 1, completionTokens: 1) && !crSummary.endedMidEvent)
        #expect(crSummary.lastEventEnd == crEnd.count)
        // Empty stream.
        let (empty, _) = scan([])
        #expect(empty.eventCount == 0 && !empty.endedMidEvent && empty.usage == nil)
    }

    @Test func errorsAndOversizedEvents() {
        let error = scan("event: conversation.response.error\ndata: {\"type\":\"conversation.response.error\",\"message\":\"boom\",\"code\":500}\n\n")
        #expect(error.sawError && !error.sawTerminalEvent)
        let finishError = scan("data: {\"choices\":[{\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}]}\n\n")
        #expect(finishError.sawError && finishError.finishReason == "error")

        let big = "data: {\"choices\":[{\"delta\":{\"content\":\"\(String(repeating: "x", count: 5000))\"}}]}\n\ndata: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n"
        var scanner = SSEUsageScanner(maxEventDataBytes: 1000)
        scanner.feed(Array(big.utf8))
        scanner.finish()
        #expect(scanner.oversizedEvents == 1 && scanner.eventCount == 2)
        #expect(scanner.completionTextBytes == 0 && scanner.usage == Usage(promptTokens: 1, completionTokens: 2))
    }

    @Test func randomGarbageNeverCrashes() {
        var random = SplitMix64Metering(state: 99)
        let alphabet = Array("data:event \n\r{}[]\",:0123456789usagechoicesdelta[DONE]\\".utf8)
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...300, using: &random)).map { _ in alphabet.randomElement(using: &random)! }
            var scanner = SSEUsageScanner()
            scanner.feed(bytes)
            scanner.finish()
            _ = UsageExtractor.usage(fromJSON: bytes)
            _ = UsageExtractor.usage(fromJSON: Array("{\"usage\":".utf8) + bytes)
        }
    }

    // MARK: Against the mock server

    @Test func usageFromLiveMockResponses() async throws {
        let mock = MockMistral()
        try await mock.withRunningServer { server in
            let requests: [(String, String)] = [
                ("/v1/chat/completions", #"{"model":"mistral-small-latest","messages":[{"role":"user","content":"Hello there, tell me something long enough to cache."}],"prompt_cache_key":"k","max_tokens":7}"#),
                ("/v1/chat/completions", #"{"model":"mistral-small-latest","messages":[{"role":"user","content":"weather?"}],"tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tool_choice":"any","n":2}"#),
                ("/v1/fim/completions", ReferenceBodies.sdkFIM),
                ("/v1/embeddings", ReferenceBodies.sdkEmbeddings),
                ("/v1/moderations", #"{"model":"mistral-moderation-2603","input":["a","bb"]}"#),
                ("/v1/ocr", #"{"model":"mistral-ocr-latest","document":{"type":"document_url","document_url":"https://example.com/a.pdf"},"pages":[0,1,2]}"#),
                ("/v1/conversations", #"{"model":"mistral-medium-latest","inputs":"Hi there","instructions":"Be brief.","store":false}"#),
            ]
            for (path, body) in requests {
                let predicted = try #require(try mock.usage(path: path, body: Array(body.utf8)))
                let response = try await Self.post(server.baseURL + path, body)
                #expect(response.status == 200, "\(path): \(String(buffer: response.body))")
                let got = UsageExtractor.usage(fromJSON: response.body)
                let expected = Usage(promptTokens: predicted.promptTokens, completionTokens: predicted.completionTokens,
                                     cachedTokens: predicted.cachedTokens, pages: predicted.pagesProcessed ?? 0)
                #expect(got == expected, "\(path): \(String(buffer: response.body).prefix(300))")
            }
        }
    }

    @Test func streamsFromLiveMock() async throws {
        let mock = MockMistral(configuration: MockMistralConfiguration(completionTokens: 24, tokensPerChunk: 3))
        try await mock.withRunningServer { server in
            let chat = #"{"model":"mistral-small-latest","messages":[{"role":"user","content":"Stream me something."}],"stream":true,"n":2}"#
            let predicted = try mock.usage(forChatBody: chat)
            let expected = Usage(promptTokens: predicted.promptTokens, completionTokens: predicted.completionTokens, cachedTokens: predicted.cachedTokens)

            let (whole, summary) = try await Self.stream(server.baseURL + "/v1/chat/completions", chat)
            #expect(summary.usage == expected)
            #expect(summary.sawDone && summary.finishReason == "stop" && !summary.endedMidEvent)
            #expect(summary.completionTextBytes == Self.deltaContentBytes(whole), "both choices' text")
            #expect(expectSplitInvariant(whole) == summary)

            mock.inject(.streamWithoutUsage, matching: "/v1/chat/completions")
            let (_, withoutUsage) = try await Self.stream(server.baseURL + "/v1/chat/completions", chat)
            #expect(withoutUsage.usage == nil && !withoutUsage.sawDone && withoutUsage.finishReason == "stop")
            #expect(withoutUsage.completionTextBytes == summary.completionTextBytes)

            mock.inject(.disconnectMidStream(afterChunks: 3), matching: "/v1/chat/completions")
            let (cutBytes, cut) = try await Self.stream(server.baseURL + "/v1/chat/completions", chat)
            #expect(cut.usage == nil && !cut.isCompleteLike)
            #expect(cut.eventCount == 3 && cut.completionTextBytes == Self.deltaContentBytes(cutBytes))

            let conversation = #"{"model":"mistral-medium-latest","inputs":"Hi","stream":true,"store":false}"#
            let conversationUsage = try #require(try mock.usage(path: "/v1/conversations", body: Array(conversation.utf8)))
            let (_, typed) = try await Self.stream(server.baseURL + "/v1/conversations", conversation)
            #expect(typed.usage == Usage(promptTokens: conversationUsage.promptTokens, completionTokens: conversationUsage.completionTokens))
            #expect(typed.sawTerminalEvent && typed.lastEventType == "conversation.response.done")
            #expect(typed.completionTextBytes > 0)
        }
    }

    // MARK: Helpers

    private static func post(_ url: String, _ body: String) async throws -> (status: Int, body: ByteBuffer) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer sk-test")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), try await response.body.collect(upTo: 64 << 20))
    }

    /// Streams a response, feeding the scanner each chunk as it arrives (the relay's view).
    private static func stream(_ url: String, _ body: String) async throws -> ([UInt8], ScanSummary) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer sk-test")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        var scanner = SSEUsageScanner()
        var all: [UInt8] = []
        do {
            for try await chunk in response.body {
                scanner.feed(chunk)
                all.append(contentsOf: chunk.readableBytesView)
            }
        } catch {
            // a cut stream ends with an error: that is the case under test
        }
        scanner.finish()
        return (all, ScanSummary(scanner))
    }

    /// Independent count (Foundation) of the delta content bytes in complete `data:` events.
    private static func deltaContentBytes(_ stream: [UInt8]) -> Int {
        let text = String(decoding: stream, as: UTF8.self)
        var total = 0
        for event in text.components(separatedBy: "\n\n").dropLast() where event.hasPrefix("data: {") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(event.dropFirst(6).utf8)) as? [String: Any],
                  let choices = object["choices"] as? [[String: Any]] else { continue }
            for choice in choices {
                if let content = (choice["delta"] as? [String: Any])?["content"] as? String { total += content.utf8.count }
            }
        }
        return total
    }
}

private extension ScanSummary {
    var isCompleteLike: Bool { sawDone || sawTerminalEvent }
}
