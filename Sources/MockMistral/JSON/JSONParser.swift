/// Why a body is not JSON. `message` uses Python's `json` wording because the real API (FastAPI)
/// reports `json.JSONDecodeError.msg` in its 422 `json_invalid` detail, with `offset` as `loc[1]`.
struct JSONParseError: Error, Sendable {
    var message: String
    var offset: Int
}

/// A small strict JSON (RFC 8259) parser over bytes. Strings are decoded (escapes resolved);
/// numbers are kept as Double, which is all the mock needs (token limits, temperatures).
enum JSONParser {
    static let maximumDepth = 512

    static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBufferPointer { buffer in
            var parser = Parser(input: buffer)
            do throws(JSONParseError) {
                parser.skipWhitespace()
                let value = try parser.parseValue(depth: 0)
                parser.skipWhitespace()
                if parser.index != buffer.count {
                    throw JSONParseError(message: "Extra data", offset: parser.index)
                }
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private struct Parser {
        let input: UnsafeBufferPointer<UInt8>
        var index = 0

        mutating func skipWhitespace() {
            while index < input.count {
                switch input[index] {
                case 0x20, 0x0A, 0x0D, 0x09: index += 1
                default: return
                }
            }
        }

        mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
            guard index < input.count else { throw JSONParseError(message: "Expecting value", offset: index) }
            let start = index
            switch input[index] {
            case UInt8(ascii: "{"):
                return try parseObject(depth: depth + 1)
            case UInt8(ascii: "["):
                return try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""):
                let string = try parseString()
                return JSONValue(kind: .string(string), range: start..<index)
            case UInt8(ascii: "t"):
                try expectLiteral("true")
                return JSONValue(kind: .bool(true), range: start..<index)
            case UInt8(ascii: "f"):
                try expectLiteral("false")
                return JSONValue(kind: .bool(false), range: start..<index)
            case UInt8(ascii: "n"):
                try expectLiteral("null")
                return JSONValue(kind: .null, range: start..<index)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return try parseNumber()
            default:
                throw JSONParseError(message: "Expecting value", offset: index)
            }
        }

        mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
            let count = literal.utf8CodeUnitCount
            guard index + count <= input.count else { throw JSONParseError(message: "Expecting value", offset: index) }
            let base = literal.utf8Start
            for offset in 0..<count where input[index + offset] != base[offset] {
                throw JSONParseError(message: "Expecting value", offset: index)
            }
            index += count
        }

        mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
            guard depth <= JSONParser.maximumDepth else {
                throw JSONParseError(message: "Maximum nesting depth exceeded", offset: index)
            }
            let start = index
            index += 1  // {
            var members: [(key: String, value: JSONValue)] = []
            skipWhitespace()
            if index < input.count, input[index] == UInt8(ascii: "}") {
                index += 1
                return JSONValue(kind: .object(JSONObject(members: members)), range: start..<index)
            }
            while true {
                guard index < input.count, input[index] == UInt8(ascii: "\"") else {
                    throw JSONParseError(message: "Expecting property name enclosed in double quotes", offset: index)
                }
                let key = try parseString()
                skipWhitespace()
                guard index < input.count, input[index] == UInt8(ascii: ":") else {
                    throw JSONParseError(message: "Expecting ':' delimiter", offset: index)
                }
                index += 1
                skipWhitespace()
                let value = try parseValue(depth: depth)
                members.append((key, value))
                skipWhitespace()
                guard index < input.count else {
                    throw JSONParseError(message: "Expecting ',' delimiter", offset: index)
                }
                if input[index] == UInt8(ascii: ",") {
                    index += 1
                    skipWhitespace()
                    continue
                }
                if input[index] == UInt8(ascii: "}") {
                    index += 1
                    return JSONValue(kind: .object(JSONObject(members: members)), range: start..<index)
                }
                throw JSONParseError(message: "Expecting ',' delimiter", offset: index)
            }
        }

        mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
            guard depth <= JSONParser.maximumDepth else {
                throw JSONParseError(message: "Maximum nesting depth exceeded", offset: index)
            }
            let start = index
            index += 1  // [
            var elements: [JSONValue] = []
            skipWhitespace()
            if index < input.count, input[index] == UInt8(ascii: "]") {
                index += 1
                return JSONValue(kind: .array(elements), range: start..<index)
            }
            while true {
                elements.append(try parseValue(depth: depth))
                skipWhitespace()
                guard index < input.count else {
                    throw JSONParseError(message: "Expecting ',' delimiter", offset: index)
                }
                if input[index] == UInt8(ascii: ",") {
                    index += 1
                    skipWhitespace()
                    continue
                }
                if input[index] == UInt8(ascii: "]") {
                    index += 1
                    return JSONValue(kind: .array(elements), range: start..<index)
                }
                throw JSONParseError(message: "Expecting ',' delimiter", offset: index)
            }
        }

        mutating func parseNumber() throws(JSONParseError) -> JSONValue {
            let start = index
            if input[index] == UInt8(ascii: "-") { index += 1 }
            guard index < input.count, isDigit(input[index]) else {
                throw JSONParseError(message: "Expecting value", offset: start)
            }
            if input[index] == UInt8(ascii: "0") {
                index += 1
            } else {
                while index < input.count, isDigit(input[index]) { index += 1 }
            }
            if index < input.count, input[index] == UInt8(ascii: ".") {
                index += 1
                guard index < input.count, isDigit(input[index]) else {
                    throw JSONParseError(message: "Extra data", offset: index - 1)
                }
                while index < input.count, isDigit(input[index]) { index += 1 }
            }
            if index < input.count, input[index] == UInt8(ascii: "e") || input[index] == UInt8(ascii: "E") {
                index += 1
                if index < input.count, input[index] == UInt8(ascii: "+") || input[index] == UInt8(ascii: "-") { index += 1 }
                guard index < input.count, isDigit(input[index]) else {
                    throw JSONParseError(message: "Extra data", offset: index)
                }
                while index < input.count, isDigit(input[index]) { index += 1 }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: input[start..<index]), as: UTF8.self)
            guard let value = Double(text) else { throw JSONParseError(message: "Expecting value", offset: start) }
            return JSONValue(kind: .number(value), range: start..<index)
        }

        @inline(__always)
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        /// Parses a string starting at the opening quote; leaves `index` after the closing quote.
        mutating func parseString() throws(JSONParseError) -> String {
            let start = index
            index += 1
            let contentStart = index
            // Fast path: no escapes, which is nearly every key and most message contents.
            while index < input.count {
                let byte = input[index]
                if byte == UInt8(ascii: "\"") {
                    let string = String(decoding: UnsafeBufferPointer(rebasing: input[contentStart..<index]), as: UTF8.self)
                    index += 1
                    return string
                }
                if byte == UInt8(ascii: "\\") { break }
                if byte < 0x20 { throw JSONParseError(message: "Invalid control character at", offset: index) }
                index += 1
            }
            guard index < input.count else {
                throw JSONParseError(message: "Unterminated string starting at", offset: start)
            }
            var decoded = [UInt8](UnsafeBufferPointer(rebasing: input[contentStart..<index]))
            while index < input.count {
                let byte = input[index]
                switch byte {
                case UInt8(ascii: "\""):
                    index += 1
                    return String(decoding: decoded, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    try parseEscape(into: &decoded)
                case 0..<0x20:
                    throw JSONParseError(message: "Invalid control character at", offset: index)
                default:
                    decoded.append(byte)
                    index += 1
                }
            }
            throw JSONParseError(message: "Unterminated string starting at", offset: start)
        }

        mutating func parseEscape(into decoded: inout [UInt8]) throws(JSONParseError) {
            let escapeStart = index
            index += 1
            guard index < input.count else { throw JSONParseError(message: "Unterminated string starting at", offset: escapeStart) }
            let byte = input[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""): decoded.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): decoded.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): decoded.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): decoded.append(0x08)
            case UInt8(ascii: "f"): decoded.append(0x0C)
            case UInt8(ascii: "n"): decoded.append(0x0A)
            case UInt8(ascii: "r"): decoded.append(0x0D)
            case UInt8(ascii: "t"): decoded.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4(escapeStart: escapeStart)
                if (0xD800..<0xDC00).contains(scalar),
                   index + 1 < input.count, input[index] == UInt8(ascii: "\\"), input[index + 1] == UInt8(ascii: "u")
                {
                    let save = index
                    index += 2
                    let low = try parseHex4(escapeStart: save)
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        index = save  // lone high surrogate; the low escape is decoded on its own
                    }
                }
                // Lone surrogates cannot be represented in UTF-8; Python keeps them, we substitute U+FFFD.
                let unicode = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                decoded.append(contentsOf: String(Character(unicode)).utf8)
            default:
                throw JSONParseError(message: "Invalid \\escape", offset: escapeStart)
            }
        }

        mutating func parseHex4(escapeStart: Int) throws(JSONParseError) -> UInt32 {
            guard index + 4 <= input.count else { throw JSONParseError(message: "Invalid \\uXXXX escape", offset: escapeStart) }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = input[index]
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: throw JSONParseError(message: "Invalid \\uXXXX escape", offset: escapeStart)
                }
                value = value << 4 | digit
                index += 1
            }
            return value
        }
    }
}
