import NIOCore

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

/// Compact JSON writing straight into a ByteBuffer. Response bodies are assembled by hand (keys in
/// the order the real API sends them, no intermediate dictionaries) because that is what keeps the
/// mock off the benchmark's critical path.
extension ByteBuffer {
    @inline(__always)
    mutating func writeLiteral(_ text: StaticString) {
        writeStaticString(text)
    }

    /// Writes `string` as a quoted, escaped JSON string.
    mutating func writeJSONString(_ string: String) {
        writeInteger(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            var runStart = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                if runStart < index { writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[runStart..<index])) }
                switch byte {
                case UInt8(ascii: "\""): writeStaticString("\\\"")
                case UInt8(ascii: "\\"): writeStaticString("\\\\")
                case 0x0A: writeStaticString("\\n")
                case 0x0D: writeStaticString("\\r")
                case 0x09: writeStaticString("\\t")
                case 0x08: writeStaticString("\\b")
                case 0x0C: writeStaticString("\\f")
                default:
                    writeStaticString("\\u00")
                    writeInteger(hexDigits[Int(byte >> 4)])
                    writeInteger(hexDigits[Int(byte & 0x0F)])
                }
                runStart = index + 1
            }
            if runStart < utf8.count { writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[runStart..<utf8.count])) }
        }
        writeInteger(UInt8(ascii: "\""))
    }

    mutating func writeJSONInt(_ value: Int) {
        writeString(String(value))
    }

    mutating func writeJSONBool(_ value: Bool) {
        if value { writeStaticString("true") } else { writeStaticString("false") }
    }

    /// Numbers in Python's `repr` style as far as the mock needs it (shortest round-trip form).
    mutating func writeJSONDouble(_ value: Double) {
        if value == value.rounded(), abs(value) < 1e15 {
            writeString(String(Int(value)))
            writeStaticString(".0")
        } else {
            writeString(String(value))
        }
    }

    mutating func writeJSONOptionalString(_ value: String?) {
        if let value { writeJSONString(value) } else { writeStaticString("null") }
    }
}

/// Builds a JSON string as `String` (for the few places that need text, e.g. tool-call arguments,
/// which Mistral returns as a JSON-encoded string inside the JSON response).
func jsonEncodedString(_ string: String) -> String {
    var buffer = ByteBuffer()
    buffer.writeJSONString(string)
    return String(buffer: buffer)
}
