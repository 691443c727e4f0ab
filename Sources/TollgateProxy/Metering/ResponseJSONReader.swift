#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TollgateDomain

/// A small, tolerant, forward-only JSON reader for upstream (Mistral) response bodies: it walks
/// the members the meter asks for and skips everything else without building a tree. It never
/// traps on malformed input: it sets `failed` and the loops stop.
///
/// Skipping is the hot part (multi-MB embeddings bodies): strings are skipped with `memchr`,
/// containers eight bytes at a time while a word holds no `"`, `[`, `]`, `{`, `}`.
/// Keys are compared as raw bytes (Mistral does not escape its keys).
struct ResponseJSONReader {
    let p: UnsafePointer<UInt8>
    let n: Int
    var i: Int
    var failed = false

    init(_ p: UnsafePointer<UInt8>, count: Int, at index: Int = 0) {
        self.p = p
        self.n = count
        self.i = index
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while i < n {
            let byte = p[i]
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            i += 1
        }
    }

    /// The next non-whitespace byte (not consumed).
    @inline(__always)
    mutating func peek() -> UInt8? {
        skipWhitespace()
        return i < n && !failed ? p[i] : nil
    }

    // MARK: Containers

    /// Consumes `{` and returns true; for any other value skips it and returns false.
    mutating func enterObject() -> Bool {
        guard let byte = peek() else { return false }
        if byte == UInt8(ascii: "{") {
            i += 1
            return true
        }
        skipValue()
        return false
    }

    /// Consumes `[` and returns true; for any other value skips it and returns false.
    mutating func enterArray() -> Bool {
        guard let byte = peek() else { return false }
        if byte == UInt8(ascii: "[") {
            i += 1
            return true
        }
        skipValue()
        return false
    }

    /// The next member's raw key range with its `:` consumed; nil at the closing `}` (consumed) or
    /// on malformed input. The caller must consume the member's value before asking again.
    mutating func nextKey() -> Range<Int>? {
        while let byte = peek() {
            switch byte {
            case UInt8(ascii: "}"):
                i += 1
                return nil
            case UInt8(ascii: ","):
                i += 1
            case UInt8(ascii: "\""):
                let start = i + 1
                skipString()
                guard !failed else { return nil }
                let key = start..<(i - 1)
                guard peek() == UInt8(ascii: ":") else {
                    failed = true
                    return nil
                }
                i += 1
                return key
            default:
                failed = true
                return nil
            }
        }
        return nil
    }

    /// True when another element follows (positioned on it); false at the closing `]` (consumed)
    /// or on malformed input. The caller must consume each element.
    mutating func nextElement() -> Bool {
        while let byte = peek() {
            switch byte {
            case UInt8(ascii: "]"):
                i += 1
                return false
            case UInt8(ascii: ","):
                i += 1
            case UInt8(ascii: "}"):
                failed = true
                return false
            default:
                return true
            }
        }
        return false
    }

    @inline(__always)
    func keyIs(_ key: Range<Int>, _ name: StaticString) -> Bool {
        let count = name.utf8CodeUnitCount
        guard key.count == count else { return false }
        return memcmp(p + key.lowerBound, name.utf8Start, count) == 0
    }

    // MARK: Skipping

    /// Skips one value of any type.
    mutating func skipValue() {
        guard let byte = peek() else {
            failed = true
            return
        }
        switch byte {
        case UInt8(ascii: "\""):
            skipString()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            skipContainer()
        default:
            // number or literal: up to the next delimiter
            let start = i
            while i < n {
                let b = p[i]
                if b == UInt8(ascii: ",") || b == UInt8(ascii: "}") || b == UInt8(ascii: "]")
                    || b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { break }
                i += 1
            }
            if i == start { failed = true }
        }
    }

    /// `p[i]` is `"`: moves past the closing quote.
    @inline(__always)
    mutating func skipString() {
        var j = i + 1
        while j < n {
            guard let found = memchr(p + j, 0x22, n - j) else { break }
            let q = UnsafeRawPointer(found).assumingMemoryBound(to: UInt8.self) - p
            var backslashes = 0
            var k = q - 1
            while k > i && p[k] == 0x5C {
                backslashes += 1
                k -= 1
            }
            if backslashes & 1 == 0 {
                i = q + 1
                return
            }
            j = q + 1
        }
        i = n
        failed = true
    }

    /// `p[i]` is `{` or `[`: moves past the matching close.
    mutating func skipContainer() {
        var depth = 0
        var j = i
        while j < n {
            // Fast-forward over words without structural bytes. (b | 0x20) maps `[`/`]` onto
            // `{`/`}` and keeps `"`; 0x02 also maps to `"`, a harmless false positive.
            while j + 8 <= n {
                let word = UnsafeRawPointer(p + j).loadUnaligned(as: UInt64.self) | 0x2020_2020_2020_2020
                if Self.hasByte(word, 0x22) || Self.hasByte(word, 0x7B) || Self.hasByte(word, 0x7D) { break }
                j += 8
            }
            guard j < n else { break }
            switch p[j] {
            case UInt8(ascii: "\""):
                i = j
                skipString()
                if failed { return }
                j = i
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 {
                    i = j + 1
                    return
                }
            default:
                break
            }
            j += 1
        }
        i = n
        failed = true
    }

    @inline(__always)
    static func hasByte(_ word: UInt64, _ byte: UInt8) -> Bool {
        let x = word ^ (0x0101_0101_0101_0101 &* UInt64(byte))
        return (x &- 0x0101_0101_0101_0101) & ~x & 0x8080_8080_8080_8080 != 0
    }

    // MARK: Scalars

    /// A string's decoded UTF-8 byte count (consumed); nil (value skipped) for other types.
    mutating func stringByteCount() -> Int? {
        guard peek() == UInt8(ascii: "\"") else {
            skipValue()
            return nil
        }
        let start = i + 1
        skipString()
        guard !failed else { return nil }
        let end = i - 1
        guard memchr(p + start, 0x5C, end - start) != nil else { return end - start }
        var count = 0
        var j = start
        while j < end {
            guard p[j] == 0x5C, j + 1 < end else {
                count += 1
                j += 1
                continue
            }
            guard p[j + 1] == UInt8(ascii: "u"), let unit = Self.hex4(p, end, j + 2) else {
                count += 1
                j += 2
                continue
            }
            j += 6
            if unit < 0x80 {
                count += 1
            } else if unit < 0x800 {
                count += 2
            } else if unit >= 0xD800 && unit <= 0xDBFF, j + 6 <= end, p[j] == 0x5C, p[j + 1] == UInt8(ascii: "u"),
                      let low = Self.hex4(p, end, j + 2), low >= 0xDC00 && low <= 0xDFFF {
                count += 4
                j += 6
            } else {
                count += 3
            }
        }
        return count
    }

    /// The byte length of the next value as written (consumed).
    mutating func rawValueLength() -> Int {
        skipWhitespace()
        let start = i
        skipValue()
        return i - start
    }

    /// A string value decoded leniently (escapes other than `\uXXXX` resolved); nil for other types.
    mutating func readString() -> String? {
        guard peek() == UInt8(ascii: "\"") else {
            skipValue()
            return nil
        }
        let start = i + 1
        skipString()
        guard !failed else { return nil }
        let raw = UnsafeBufferPointer(start: p + start, count: i - 1 - start)
        if memchr(p + start, 0x5C, raw.count) == nil { return String(decoding: raw, as: UTF8.self) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.count)
        var j = 0
        while j < raw.count {
            if raw[j] == 0x5C && j + 1 < raw.count {
                switch raw[j + 1] {
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0C)
                case UInt8(ascii: "u"):
                    if let unit = Self.hex4(p, start + raw.count, start + j + 2), let scalar = Unicode.Scalar(UInt32(unit)) {
                        bytes.append(contentsOf: Array(String(Character(scalar)).utf8))
                    } else {
                        bytes.append(contentsOf: [0xEF, 0xBF, 0xBD])
                    }
                    j += 6
                    continue
                default: bytes.append(raw[j + 1])
                }
                j += 2
            } else {
                bytes.append(raw[j])
                j += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A number as a non-negative Int (fractions rounded up, negatives clamped to 0); nil for null
    /// and other types (skipped).
    mutating func readCount() -> Int? {
        guard let byte = peek() else { return nil }
        guard byte == UInt8(ascii: "-") || (byte >= 0x30 && byte <= 0x39) else {
            skipValue()
            return nil
        }
        let start = i
        var value = 0
        var integral = true
        var overflow = false
        let negative = byte == UInt8(ascii: "-")
        if negative { i += 1 }
        while i < n, p[i] >= 0x30 && p[i] <= 0x39 {
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (plus, o2) = times.addingReportingOverflow(Int(p[i] - 0x30))
            if o1 || o2 { overflow = true } else { value = plus }
            i += 1
        }
        if i < n, p[i] == UInt8(ascii: ".") || p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E") {
            integral = false
            while i < n, p[i] == UInt8(ascii: ".") || p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")
                || p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") || (p[i] >= 0x30 && p[i] <= 0x39) {
                i += 1
            }
        }
        if negative { return 0 }
        if integral && !overflow { return value }
        let text = String(decoding: UnsafeBufferPointer(start: p + start, count: i - start), as: UTF8.self)
        guard let double = Double(text), double.isFinite else { return overflow ? Int.max : nil }
        let rounded = double.rounded(.up)
        return rounded >= Double(Int.max) ? Int.max : max(0, Int(rounded))
    }

    @inline(__always)
    static func hex4(_ p: UnsafePointer<UInt8>, _ end: Int, _ j: Int) -> Int? {
        guard j + 4 <= end else { return nil }
        var value = 0
        for k in 0..<4 {
            let c = p[j + k]
            let digit: Int
            switch c {
            case 0x30...0x39: digit = Int(c) - 0x30
            case 0x61...0x66: digit = Int(c) - 0x61 + 10
            case 0x41...0x46: digit = Int(c) - 0x41 + 10
            default: return nil
            }
            value = value << 4 | digit
        }
        return value
    }

    // MARK: Mistral usage objects

    /// Reads a `usage` object (chat/FIM/embeddings/moderation/conversations/transcription, and the
    /// Responses API's `input_tokens`/`output_tokens` spelling). Cached tokens come from, in order of
    /// preference, `prompt_tokens_details.cached_tokens`, `prompt_token_details.cached_tokens`,
    /// `input_tokens_details.cached_tokens`, `num_cached_tokens`. Nil for `null`, non-objects and
    /// objects with none of these counters.
    mutating func readUsage() -> Usage? {
        guard enterObject() else { return nil }
        var usage = Usage()
        var found = false
        var cachedPlural: Int?
        var cachedSingular: Int?
        var cachedInput: Int?
        var cachedLegacy: Int?
        while let key = nextKey() {
            if keyIs(key, "prompt_tokens") || keyIs(key, "input_tokens") {
                if let value = readCount() {
                    usage.promptTokens = value
                    found = true
                }
            } else if keyIs(key, "completion_tokens") || keyIs(key, "output_tokens") {
                if let value = readCount() {
                    usage.completionTokens = value
                    found = true
                }
            } else if keyIs(key, "prompt_tokens_details") {
                cachedPlural = readCachedTokens()
            } else if keyIs(key, "prompt_token_details") {
                cachedSingular = readCachedTokens()
            } else if keyIs(key, "input_tokens_details") {
                cachedInput = readCachedTokens()
            } else if keyIs(key, "num_cached_tokens") {
                cachedLegacy = readCount()
            } else {
                skipValue()
            }
        }
        if let cached = cachedPlural ?? cachedSingular ?? cachedInput ?? cachedLegacy {
            usage.cachedTokens = cached
            found = true
        }
        return found ? usage : nil
    }

    private mutating func readCachedTokens() -> Int? {
        guard enterObject() else { return nil }
        var cached: Int?
        while let key = nextKey() {
            if keyIs(key, "cached_tokens") { cached = readCount() } else { skipValue() }
        }
        return cached
    }

    /// OCR `usage_info.pages_processed`; nil when absent.
    mutating func readPagesProcessed() -> Int? {
        guard enterObject() else { return nil }
        var pages: Int?
        while let key = nextKey() {
            if keyIs(key, "pages_processed") { pages = readCount() } else { skipValue() }
        }
        return pages
    }
}
