import NIOCore
import TollgateDomain

/// Reads what a non-streaming Mistral response consumed: top-level `usage` (tokens; also the
/// conversations and Responses API shapes, see `ResponseJSONReader.readUsage`) and OCR's
/// `usage_info.pages_processed` (→ `Usage.pages`). Nil when the body has neither (errors, models,
/// files…), or is not a JSON object. Mistral never sends both; a body that does gets one of them
/// (the last member if it is one of the two, else the first `usage`, else `usage_info`).
///
/// Cost: if the body's last top-level member is `usage` or `usage_info` (embeddings, moderations,
/// conversations, OCR), it is found from the end without reading the rest (a multi-MB embeddings
/// body costs the same as a small one). Otherwise top-level members are walked forward, skipping
/// values (~0.2–1 ns per skipped byte), and the walk stops at the first `usage`.
public enum UsageExtractor {
    public static func usage(fromJSON body: ByteBuffer) -> Usage? {
        body.withUnsafeReadableBytes { usage(fromJSON: $0) }
    }

    public static func usage(fromJSON body: [UInt8]) -> Usage? {
        body.withUnsafeBytes { usage(fromJSON: $0) }
    }

    public static func usage(fromJSON body: UnsafeRawBufferPointer) -> Usage? {
        guard let base = body.baseAddress, body.count > 0 else { return nil }
        let p = base.assumingMemoryBound(to: UInt8.self)
        if let fast = lastMember(p, body.count) {
            var reader = ResponseJSONReader(p, count: body.count, at: fast.valueStart)
            if fast.isUsage {
                if let usage = reader.readUsage() { return usage }
            } else if let pages = reader.readPagesProcessed() {
                return Usage(pages: pages)
            }
        }
        return forwardScan(p, body.count)
    }

    private static func forwardScan(_ p: UnsafePointer<UInt8>, _ n: Int) -> Usage? {
        var reader = ResponseJSONReader(p, count: n)
        guard reader.enterObject() else { return nil }
        var pages: Int?
        while let key = reader.nextKey() {
            if reader.keyIs(key, "usage") {
                if let tokens = reader.readUsage() { return tokens }
            } else if reader.keyIs(key, "usage_info") {
                pages = reader.readPagesProcessed()
            } else {
                reader.skipValue()
            }
        }
        return pages.map { Usage(pages: $0) }
    }

    /// When the body ends with `… "usage": {…} }` or `… "usage_info": {…} }`, where that object
    /// starts. Walks backwards: inside a JSON string every `"` is escaped, so the previous unescaped
    /// quote before a closing quote is its opening quote, and brackets outside strings balance.
    private static func lastMember(_ p: UnsafePointer<UInt8>, _ n: Int) -> (valueStart: Int, isUsage: Bool)? {
        var j = n - 1
        func skipWhitespaceBackwards() {
            while j >= 0, p[j] == 0x20 || p[j] == 0x0A || p[j] == 0x0D || p[j] == 0x09 { j -= 1 }
        }
        func isEscaped(_ quote: Int) -> Bool {
            var backslashes = 0
            var k = quote - 1
            while k >= 0 && p[k] == 0x5C {
                backslashes += 1
                k -= 1
            }
            return backslashes & 1 == 1
        }
        /// `p[j]` is a closing quote: the index of its opening quote.
        func openingQuote(_ close: Int) -> Int? {
            var k = close - 1
            while k >= 0 {
                if p[k] == 0x22 && !isEscaped(k) { return k }
                k -= 1
            }
            return nil
        }
        skipWhitespaceBackwards()
        guard j > 0, p[j] == UInt8(ascii: "}") else { return nil }
        j -= 1
        skipWhitespaceBackwards()
        guard j > 0, p[j] == UInt8(ascii: "}") else { return nil }
        // Find the matching `{`.
        var depth = 0
        while j >= 0 {
            switch p[j] {
            case 0x22:
                guard let open = openingQuote(j) else { return nil }
                j = open
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth += 1
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth -= 1
            default:
                break
            }
            if depth == 0 { break }
            j -= 1
        }
        guard j > 0, p[j] == UInt8(ascii: "{") else { return nil }
        let valueStart = j
        j -= 1
        skipWhitespaceBackwards()
        guard j > 0, p[j] == UInt8(ascii: ":") else { return nil }
        j -= 1
        skipWhitespaceBackwards()
        guard j > 0, p[j] == 0x22, let open = openingQuote(j) else { return nil }
        let key = UnsafeBufferPointer(start: p + open + 1, count: j - open - 1)
        // The member must be a top-level one: `{` or `,` precedes the key. (A nested object's last
        // member would be followed by its own `}` before the top-level `}`, so it cannot get here.)
        j = open - 1
        skipWhitespaceBackwards()
        guard j >= 0, p[j] == UInt8(ascii: ",") || p[j] == UInt8(ascii: "{") else { return nil }
        if key.elementsEqual("usage".utf8) { return (valueStart, true) }
        if key.elementsEqual("usage_info".utf8) { return (valueStart, false) }
        return nil
    }
}
