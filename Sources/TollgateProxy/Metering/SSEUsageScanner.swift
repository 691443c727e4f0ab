import NIOCore
import TollgateDomain

/// Watches a Server-Sent Events stream from Mistral as it is relayed, fed arbitrary chunks (an event,
/// a line, even a CRLF may be split anywhere). It only reads the bytes: relaying them unchanged as
/// they arrive stays possible, and `lastEventEnd` tells a relay where complete events end if it
/// prefers to forward event-aligned chunks.
///
/// Framing follows the WHATWG SSE parser: lines end with CRLF, LF or CR; a blank line ends an
/// event; `:` lines are comments; `data:` lines are joined with `\n`; one space after the colon is
/// dropped; events still open when the stream ends are discarded (as clients discard them). A blank
/// line ending in CR is only counted as ended once the next byte shows whether an LF follows (or at
/// `finish()`), so boundaries never split a CRLF and do not depend on how the stream was chunked.
///
/// From each event's data it records:
/// - `usage`: the last non-null `usage` object of any data JSON (top level: chat/FIM/agents chunks,
///   conversations' `conversation.response.done`, transcription's `transcription.done`; or
///   `response.usage` for the Responses API's `response.completed`);
/// - `finishReason`: the last non-null `choices[].finish_reason`;
/// - `sawDone`: a `data: [DONE]` event; `sawTerminalEvent`: a typed end event
///   (`conversation.response.done`, `response.completed`, `response.done`, `transcription.done`);
/// - `completionTextBytes`: decoded UTF-8 bytes of the completion delivered so far, to estimate
///   completion tokens when the stream ends without usage (≈ 1 token per 3–4 bytes; at most 1 per
///   byte): `choices[].delta.content` (a string, or the `text` strings inside content chunks, e.g.
///   thinking chunks), `choices[].delta.tool_calls[].function.name` and `.arguments`; and for typed
///   events whose type ends in `.delta` (from the `event:` line, else the data's `type`), the
///   top-level `content`, `arguments`, `delta` and `text` strings.
public struct SSEUsageScanner: Sendable {
    /// Events whose data exceeds this are not buffered nor parsed (counted in `oversizedEvents`).
    public var maxEventDataBytes: Int

    public private(set) var usage: Usage?
    public private(set) var finishReason: String?
    public private(set) var sawDone = false
    public private(set) var sawTerminalEvent = false
    /// A `finish_reason` of "error", or an error event (`conversation.response.error`, `response.failed`, `error`).
    public private(set) var sawError = false
    public private(set) var completionTextBytes = 0
    /// Events dispatched (blocks with at least one `data` line).
    public private(set) var eventCount = 0
    public private(set) var oversizedEvents = 0
    /// Total bytes fed.
    public private(set) var bytesScanned = 0
    /// Stream offset just past the blank line that ended the latest event block (0 before any):
    /// bytes before it are whole events.
    public private(set) var lastEventEnd = 0
    /// `finish()` was called while an event was still open (the stream was cut mid-event).
    public private(set) var endedMidEvent = false
    public private(set) var isFinished = false

    /// The stream ended the way Mistral ends a complete stream.
    public var isComplete: Bool { sawDone || sawTerminalEvent }

    /// The type of the latest event with data (`event:` line, else the data's `type`), if any.
    public var lastEventType: String? {
        lastType.isEmpty ? nil : String(decoding: lastType, as: UTF8.self)
    }

    // Line state.
    private enum LineState: UInt8 { case lineStart, fieldName, valueStart, value, ignore }
    private enum Field: UInt8 { case data, event, other }
    private var lineState = LineState.lineStart
    private var field = Field.other
    private var fieldName: UInt64 = 0
    private var fieldNameLength = 0
    private var pendingCR = false
    private var dispatchPending = false
    private var blockHasLines = false

    // Current event.
    private var data: [UInt8] = []
    private var dataLines = 0
    private var dataOverflow = false
    private var eventType: [UInt8] = []
    private var lastType: [UInt8] = []

    private static let maxTypeLength = 64

    public init(maxEventDataBytes: Int = 16 * 1024 * 1024) {
        self.maxEventDataBytes = maxEventDataBytes
        data.reserveCapacity(1024)
    }

    // MARK: Feeding

    /// Scans the next chunk. Returns the number of event blocks that ended in it. Ignored after `finish()`.
    @discardableResult
    public mutating func feed(_ chunk: ByteBuffer) -> Int {
        chunk.withUnsafeReadableBytes { feed($0) }
    }

    @discardableResult
    public mutating func feed(_ chunk: [UInt8]) -> Int {
        chunk.withUnsafeBytes { feed($0) }
    }

    @discardableResult
    public mutating func feed(_ chunk: UnsafeRawBufferPointer) -> Int {
        guard !isFinished, let base = chunk.baseAddress, chunk.count > 0 else { return 0 }
        let p = base.assumingMemoryBound(to: UInt8.self)
        let n = chunk.count
        let offset = bytesScanned
        var ended = 0
        var k = 0
        while k < n {
            let byte = p[k]
            if pendingCR {
                pendingCR = false
                if byte == 0x0A {
                    k += 1
                    if dispatchPending {
                        dispatchPending = false
                        endBlock(at: offset + k)
                        ended += 1
                    }
                    continue
                }
                if dispatchPending {
                    dispatchPending = false
                    endBlock(at: offset + k)
                    ended += 1
                }
            }
            if byte == 0x0A || byte == 0x0D {
                k += 1
                if lineState == .lineStart {
                    if blockHasLines {
                        if byte == 0x0D {
                            pendingCR = true
                            dispatchPending = true
                        } else {
                            endBlock(at: offset + k)
                            ended += 1
                        }
                    } else if byte == 0x0D {
                        pendingCR = true
                    }
                } else {
                    endLine()
                    if byte == 0x0D { pendingCR = true }
                }
                continue
            }
            switch lineState {
            case .lineStart:
                blockHasLines = true
                if byte == UInt8(ascii: ":") {
                    lineState = .ignore
                } else {
                    lineState = .fieldName
                    fieldName = UInt64(byte)
                    fieldNameLength = 1
                }
                k += 1
            case .fieldName:
                if byte == UInt8(ascii: ":") {
                    beginValue()
                    lineState = .valueStart
                } else {
                    if fieldNameLength < 8 { fieldName |= UInt64(byte) << (8 * UInt64(fieldNameLength)) }
                    fieldNameLength += 1
                }
                k += 1
            case .valueStart:
                lineState = .value
                if byte == 0x20 { k += 1 }
            case .value:
                var end = k
                while end < n && p[end] != 0x0A && p[end] != 0x0D { end += 1 }
                appendValue(UnsafeBufferPointer(start: p + k, count: end - k))
                k = end
            case .ignore:
                while k < n && p[k] != 0x0A && p[k] != 0x0D { k += 1 }
            }
        }
        bytesScanned += n
        return ended
    }

    /// The stream ended (upstream closed, or the relay stopped). Dispatches an event whose final
    /// blank line ended in CR; an event still open is discarded and sets `endedMidEvent`.
    public mutating func finish() {
        guard !isFinished else { return }
        if dispatchPending {
            dispatchPending = false
            endBlock(at: bytesScanned)
        }
        if blockHasLines || lineState != .lineStart { endedMidEvent = true }
        isFinished = true
    }

    // MARK: Lines

    private static let dataName: UInt64 = 0x6174_6164  // "data" little-endian
    private static let eventName: UInt64 = 0x74_6E65_7665  // "event"

    private mutating func beginValue() {
        if fieldNameLength == 4 && fieldName == Self.dataName {
            field = .data
            if dataLines > 0 { appendData(CollectionOfOne(0x0A)) }
            dataLines += 1
        } else if fieldNameLength == 5 && fieldName == Self.eventName {
            field = .event
            eventType.removeAll(keepingCapacity: true)
        } else {
            field = .other
        }
    }

    private mutating func endLine() {
        if lineState == .fieldName { beginValue() }  // a line without a colon: field with an empty value
        lineState = .lineStart
    }

    private mutating func appendValue(_ bytes: UnsafeBufferPointer<UInt8>) {
        switch field {
        case .data:
            appendData(bytes)
        case .event:
            let room = Self.maxTypeLength - eventType.count
            if room > 0 { eventType.append(contentsOf: bytes.prefix(room)) }
        case .other:
            break
        }
    }

    private mutating func appendData(_ bytes: some Collection<UInt8>) {
        guard !dataOverflow else { return }
        if data.count + bytes.count > maxEventDataBytes {
            dataOverflow = true
            data.removeAll()
            return
        }
        data.append(contentsOf: bytes)
    }

    private mutating func endBlock(at end: Int) {
        blockHasLines = false
        lastEventEnd = end
        if dataLines > 0 {
            eventCount += 1
            if dataOverflow {
                oversizedEvents += 1
            } else {
                process()
            }
        }
        data.removeAll(keepingCapacity: data.capacity <= 64 * 1024)
        dataLines = 0
        dataOverflow = false
        eventType.removeAll(keepingCapacity: true)
    }

    // MARK: Event data

    private mutating func process() {
        if data.count == 6 && data.elementsEqual("[DONE]".utf8) {
            sawDone = true
            return
        }
        let payload = data
        payload.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            scanData(ResponseJSONReader(base, count: buffer.count))
        }
    }

    private mutating func scanData(_ start: ResponseJSONReader) {
        var reader = start
        var typed = 0  // candidate bytes of typed `.delta` events
        var dataType: Range<Int>?
        if reader.enterObject() {
            while let key = reader.nextKey() {
                if reader.keyIs(key, "usage") {
                    if let usage = reader.readUsage() { self.usage = usage }
                } else if reader.keyIs(key, "choices") {
                    scanChoices(&reader)
                } else if reader.keyIs(key, "response") {
                    if reader.enterObject() {
                        while let inner = reader.nextKey() {
                            if reader.keyIs(inner, "usage") {
                                if let usage = reader.readUsage() { self.usage = usage }
                            } else {
                                reader.skipValue()
                            }
                        }
                    }
                } else if reader.keyIs(key, "type") {
                    reader.skipWhitespace()
                    let start = reader.i + 1
                    if reader.stringByteCount() != nil { dataType = start..<(reader.i - 1) }
                } else if reader.keyIs(key, "content") {
                    typed += Self.contentBytes(&reader, depth: 0)
                } else if reader.keyIs(key, "arguments") {
                    typed += Self.argumentsBytes(&reader)
                } else if reader.keyIs(key, "delta") || reader.keyIs(key, "text") {
                    typed += reader.stringByteCount() ?? 0
                } else {
                    reader.skipValue()
                }
            }
        }
        if eventType.isEmpty, let dataType, dataType.count <= Self.maxTypeLength {
            eventType.append(contentsOf: UnsafeBufferPointer(start: reader.p + dataType.lowerBound, count: dataType.count))
        }
        guard !eventType.isEmpty else { return }
        lastType = eventType
        if eventType.count > 6 && eventType.suffix(6).elementsEqual(".delta".utf8) {
            completionTextBytes += typed
        }
        if Self.equals(eventType, "conversation.response.done") || Self.equals(eventType, "response.completed")
            || Self.equals(eventType, "response.done") || Self.equals(eventType, "transcription.done") {
            sawTerminalEvent = true
        } else if Self.equals(eventType, "conversation.response.error") || Self.equals(eventType, "response.failed")
            || Self.equals(eventType, "error") {
            sawError = true
        }
    }

    private mutating func scanChoices(_ reader: inout ResponseJSONReader) {
        guard reader.enterArray() else { return }
        while reader.nextElement() {
            guard reader.enterObject() else { continue }
            while let key = reader.nextKey() {
                if reader.keyIs(key, "finish_reason") {
                    if let reason = reader.readString() {
                        finishReason = reason
                        if reason == "error" { sawError = true }
                    }
                } else if reader.keyIs(key, "delta") {
                    guard reader.enterObject() else { continue }
                    while let member = reader.nextKey() {
                        if reader.keyIs(member, "content") {
                            completionTextBytes += Self.contentBytes(&reader, depth: 0)
                        } else if reader.keyIs(member, "tool_calls") {
                            completionTextBytes += Self.toolCallBytes(&reader)
                        } else {
                            reader.skipValue()
                        }
                    }
                } else {
                    reader.skipValue()
                }
            }
        }
    }

    /// A content value: a string's bytes, or the `text` strings inside chunk objects/arrays.
    private static func contentBytes(_ reader: inout ResponseJSONReader, depth: Int) -> Int {
        guard let byte = reader.peek() else { return 0 }
        switch byte {
        case UInt8(ascii: "\""):
            return reader.stringByteCount() ?? 0
        case UInt8(ascii: "["):
            guard depth < 16, reader.enterArray() else {
                reader.skipValue()
                return 0
            }
            var total = 0
            while reader.nextElement() { total += contentBytes(&reader, depth: depth + 1) }
            return total
        case UInt8(ascii: "{"):
            guard depth < 16, reader.enterObject() else {
                reader.skipValue()
                return 0
            }
            var total = 0
            while let key = reader.nextKey() {
                if reader.keyIs(key, "text") {
                    total += reader.stringByteCount() ?? 0
                } else if reader.keyIs(key, "thinking") || reader.keyIs(key, "content") {
                    total += contentBytes(&reader, depth: depth + 1)
                } else {
                    reader.skipValue()
                }
            }
            return total
        default:
            reader.skipValue()
            return 0
        }
    }

    /// `tool_calls[]`: bytes of `function.name` and `function.arguments` (a string, or an object as written).
    private static func toolCallBytes(_ reader: inout ResponseJSONReader) -> Int {
        guard reader.enterArray() else { return 0 }
        var total = 0
        while reader.nextElement() {
            guard reader.enterObject() else { continue }
            while let key = reader.nextKey() {
                guard reader.keyIs(key, "function") else {
                    reader.skipValue()
                    continue
                }
                guard reader.enterObject() else { continue }  // (a non-object was skipped)
                while let member = reader.nextKey() {
                    if reader.keyIs(member, "name") {
                        total += reader.stringByteCount() ?? 0
                    } else if reader.keyIs(member, "arguments") {
                        total += argumentsBytes(&reader)
                    } else {
                        reader.skipValue()
                    }
                }
            }
        }
        return total
    }

    private static func argumentsBytes(_ reader: inout ResponseJSONReader) -> Int {
        switch reader.peek() {
        case UInt8(ascii: "\""): return reader.stringByteCount() ?? 0
        case UInt8(ascii: "n"): reader.skipValue(); return 0
        default: return reader.rawValueLength()
        }
    }

    private static func equals(_ bytes: [UInt8], _ name: StaticString) -> Bool {
        bytes.count == name.utf8CodeUnitCount
            && bytes.elementsEqual(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
    }
}
