import NIOCore

/// Validates a client's JSON request body and extracts what the gateway needs, in a single pass over
/// the bytes, without building a tree (no Foundation).
///
/// Validation (what makes a body a 400 before it reaches Mistral):
/// - RFC 8259 JSON: the only whitespace is space/tab/LF/CR; no BOM, no trailing commas, no trailing
///   data; strings must be valid UTF-8 (no overlongs, no encoded surrogates) without raw control
///   characters; escapes are `\" \\ \/ \b \f \n \r \t \uXXXX`. **Lone surrogates are rejected**:
///   a `\uD800`–`\uDBFF` escape must be immediately followed by a `\uDC00`–`\uDFFF` escape, and a
///   low surrogate may not appear alone (RFC 8259 §8.2 leaves their meaning unpredictable; Python
///   would pass them on to a tokenizer that cannot encode them).
/// - Nesting deeper than `maxDepth` arrays/objects (top-level object = level 1).
/// - **Duplicate keys in any object at any depth**, compared after unescaping (`"mo\u0064el"` is
///   `"model"`): Swift decoders keep the first occurrence and Python (Mistral) the last, so a body
///   with two `model`s could be authorised and priced for one model and served by another.
///   Objects with more than 16 keys switch from linear comparison to a per-process-seeded hash set,
///   so key-flooding cannot make the check quadratic.
/// - The top level must be an object. Fields the gateway reads must have Mistral's types:
///   `model`/`agent_id` string or null; `stream` boolean or null; `max_tokens` and
///   `completion_args.max_tokens` null or a non-negative integer; `n` null or an integer ≥ 1.
///   Integers may be written with a fraction or exponent when the value is integral (`5.0`, `1e3`),
///   like Mistral's (pydantic) lax parsing; they are read exactly as Python reads them (through a
///   double). Strings such as `"5"` are rejected (pydantic would coerce them, the gateway does not
///   guess), as are values above 2,147,483,647.
public struct RequestInspector: Sendable {
    public var maxDepth: Int
    public var promptTokenBound: PromptTokenBoundRule

    /// Largest `max_tokens` / `n` the inspector accepts.
    public static let maximumIntegerValue = Int(Int32.max)

    public init(maxDepth: Int = 64, promptTokenBound: PromptTokenBoundRule = .default) {
        self.maxDepth = maxDepth
        self.promptTokenBound = promptTokenBound
    }

    public func inspect(_ body: ByteBuffer) throws(RequestInspectionError) -> InspectedRequest {
        let result = body.withUnsafeReadableBytes { raw in
            Result { () throws(RequestInspectionError) -> InspectedRequest in try inspect(raw) }
        }
        return try result.get()
    }

    public func inspect(_ bytes: [UInt8]) throws(RequestInspectionError) -> InspectedRequest {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(RequestInspectionError) -> InspectedRequest in try inspect(raw) }
        }
        return try result.get()
    }

    public func inspect(_ bytes: UnsafeRawBufferPointer) throws(RequestInspectionError) -> InspectedRequest {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw .invalidJSON(offset: 0, reason: .unexpectedEnd)
        }
        var scanner = RequestScanner(p: base.assumingMemoryBound(to: UInt8.self), n: bytes.count, maxDepth: max(1, maxDepth))
        try scanner.run()
        return scanner.result(rule: promptTokenBound)
    }
}

// MARK: - Scanner

private enum ValueKind: UInt8 {
    case object, array, string, number, `true`, `false`, null
}

/// What the key of the current object member means to the inspector.
private enum KeyTag: UInt8 {
    case other
    // top level
    case model, agentID, stream, maxTokens, n, safePrompt, promptMode
    case messages, input, inputs, completionArgs, promptText
    // inside prompt fields
    case image, document
    // completion_args.max_tokens
    case nestedMaxTokens

    var isPrompt: Bool {
        switch self {
        case .messages, .input, .inputs, .completionArgs, .promptText: return true
        default: return false
        }
    }
}

private struct Frame {
    var isObject: Bool
    /// Index into `keys` where this frame's keys start.
    var keysStart: Int
    /// Members (objects) or elements (arrays) so far.
    var count: Int = 0
    /// Index into `largeSets`, or -1 while the object has few keys.
    var largeSet: Int = -1
    /// Tag of the current member's key (objects only).
    var tag: KeyTag = .other
}

private struct KeyEntry {
    /// Raw content range (between the quotes).
    var start: Int
    var end: Int
    var escaped: Bool
    /// FNV-1a of the decoded bytes, and their count.
    var hash: UInt64
    var length: Int
}

private let topLevelFields: [(StaticString, KeyTag)] = [
    ("model", .model), ("messages", .messages), ("stream", .stream), ("max_tokens", .maxTokens),
    ("n", .n), ("prompt", .promptText), ("suffix", .promptText), ("input", .input), ("inputs", .inputs),
    ("instructions", .promptText), ("tools", .promptText), ("tool_choice", .promptText),
    ("response_format", .promptText), ("prediction", .promptText), ("document", .promptText),
    ("completion_args", .completionArgs), ("agent_id", .agentID), ("safe_prompt", .safePrompt),
    ("prompt_mode", .promptMode),
]

private enum ASCII {
    static let quote: UInt8 = 0x22
    static let backslash: UInt8 = 0x5C
    static let openBrace: UInt8 = 0x7B
    static let closeBrace: UInt8 = 0x7D
    static let openBracket: UInt8 = 0x5B
    static let closeBracket: UInt8 = 0x5D
    static let comma: UInt8 = 0x2C
    static let colon: UInt8 = 0x3A
    static let minus: UInt8 = 0x2D
    static let plus: UInt8 = 0x2B
    static let dot: UInt8 = 0x2E
    static let zero: UInt8 = 0x30
    static let nine: UInt8 = 0x39
}

private struct RequestScanner {
    typealias Failure = RequestInspectionError

    let p: UnsafePointer<UInt8>
    let n: Int
    let maxDepth: Int
    var i = 0

    var frames: [Frame] = []
    var keys: [KeyEntry] = []
    var largeSets: [Set<Int>] = []
    var scratchA: [UInt8] = []
    var scratchB: [UInt8] = []

    // The value that just ended.
    var lastKind: ValueKind = .null
    /// Strings: content start (after the quote); numbers: first byte.
    var lastStart = 0
    /// Strings: content end (the closing quote); numbers: end.
    var lastEnd = 0
    var lastStringEscaped = false
    var lastNumberIsInteger = true
    var lastContainerCount = 0

    // Top-level member values.
    var topValueStart = 0
    var nestedValueStart = 0

    // Prompt accounting.
    var inPrompt = false
    var promptRawBytes = 0
    var separators = 0
    var mediaOwnerDepth = -1
    var mediaStart = 0
    var mediaIsImage = false
    var mediaBytes = 0
    var promptMode = false

    var out = InspectedRequest()
    var maxTokensNull: Range<Int>?
    var objectStart = 0
    var objectEmpty = false

    init(p: UnsafePointer<UInt8>, n: Int, maxDepth: Int) {
        self.p = p
        self.n = n
        self.maxDepth = maxDepth
        frames.reserveCapacity(min(maxDepth, 16))
        keys.reserveCapacity(32)
    }

    func result(rule: PromptTokenBoundRule) -> InspectedRequest {
        var result = out
        result.bodyLength = n
        let promptBytes = max(0, promptRawBytes - mediaBytes) + separators
        var bound = rule.requestOverhead + promptBytes
        bound += rule.tokensPerMessage * result.messageCount
        bound += rule.tokensPerImage * result.imageCount
        bound += rule.tokensPerDocument * result.documentCount
        if result.safePrompt { bound += rule.safePromptAllowance }
        if promptMode { bound += rule.promptModeAllowance }
        result.promptTokensUpperBound = bound
        if result.maxTokens != nil {
            result.injectionPoint = .none
        } else if let maxTokensNull {
            result.injectionPoint = .replaceNull(maxTokensNull)
        } else {
            result.injectionPoint = .afterBrace(offset: objectStart, emptyObject: objectEmpty)
        }
        return result
    }

    // MARK: Driver

    private enum State { case value, key, afterValue }

    mutating func run() throws(Failure) {
        skipWhitespace()
        guard i < n else { throw .invalidJSON(offset: i, reason: .unexpectedEnd) }
        switch p[i] {
        case ASCII.openBrace:
            break
        case ASCII.openBracket, ASCII.quote, ASCII.minus, ASCII.zero...ASCII.nine, UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            throw .notAnObject
        default:
            throw .invalidJSON(offset: i, reason: .unexpectedCharacter)
        }
        objectStart = i

        var state = State.value
        while true {
            switch state {
            case .value:
                skipWhitespace()
                guard i < n else { throw .invalidJSON(offset: i, reason: .unexpectedEnd) }
                beginValue()
                let byte = p[i]
                switch byte {
                case ASCII.openBrace:
                    try push(isObject: true)
                    i += 1
                    skipWhitespace()
                    if i < n && p[i] == ASCII.closeBrace {
                        if frames.count == 1 { objectEmpty = true }
                        i += 1
                        pop()
                        state = .afterValue
                    } else {
                        state = .key
                    }
                case ASCII.openBracket:
                    try push(isObject: false)
                    i += 1
                    skipWhitespace()
                    if i < n && p[i] == ASCII.closeBracket {
                        i += 1
                        pop()
                        state = .afterValue
                    } else {
                        state = .value
                    }
                case ASCII.quote:
                    let (start, end, escaped) = try scanString()
                    lastKind = .string
                    lastStart = start
                    lastEnd = end
                    lastStringEscaped = escaped
                    state = .afterValue
                case ASCII.minus, ASCII.zero...ASCII.nine:
                    try scanNumber()
                    state = .afterValue
                case UInt8(ascii: "t"):
                    try scanLiteral("true")
                    lastKind = .true
                    state = .afterValue
                case UInt8(ascii: "f"):
                    try scanLiteral("false")
                    lastKind = .false
                    state = .afterValue
                case UInt8(ascii: "n"):
                    try scanLiteral("null")
                    lastKind = .null
                    state = .afterValue
                default:
                    throw .invalidJSON(offset: i, reason: .unexpectedCharacter)
                }

            case .key:
                skipWhitespace()
                guard i < n else { throw .invalidJSON(offset: i, reason: .unexpectedEnd) }
                guard p[i] == ASCII.quote else { throw .invalidJSON(offset: i, reason: .expectedKey) }
                let quoteOffset = i
                let (start, end, escaped) = try scanString()
                try processKey(start: start, end: end, escaped: escaped, quoteOffset: quoteOffset)
                skipWhitespace()
                guard i < n else { throw .invalidJSON(offset: i, reason: .unexpectedEnd) }
                guard p[i] == ASCII.colon else { throw .invalidJSON(offset: i, reason: .expectedColon) }
                if inPrompt { separators += 1 }
                i += 1
                state = .value

            case .afterValue:
                try valueEnded()
                if frames.isEmpty {
                    skipWhitespace()
                    guard i == n else { throw .invalidJSON(offset: i, reason: .trailingCharacters) }
                    return
                }
                skipWhitespace()
                guard i < n else { throw .invalidJSON(offset: i, reason: .unexpectedEnd) }
                let byte = p[i]
                let isObject = frames[frames.count - 1].isObject
                if byte == ASCII.comma {
                    if inPrompt { separators += 1 }
                    i += 1
                    state = isObject ? .key : .value
                } else if byte == (isObject ? ASCII.closeBrace : ASCII.closeBracket) {
                    i += 1
                    pop()
                    state = .afterValue
                } else {
                    throw .invalidJSON(offset: i, reason: .expectedCommaOrEnd)
                }
            }
        }
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while i < n {
            let byte = p[i]
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            i += 1
        }
    }

    @inline(__always)
    mutating func push(isObject: Bool) throws(Failure) {
        guard frames.count < maxDepth else { throw .nestingTooDeep(limit: maxDepth, offset: i) }
        frames.append(Frame(isObject: isObject, keysStart: keys.count))
    }

    @inline(__always)
    mutating func pop() {
        let frame = frames.removeLast()
        if keys.count > frame.keysStart { keys.removeLast(keys.count - frame.keysStart) }
        if frame.largeSet >= 0 { largeSets.removeLast() }
        lastKind = frame.isObject ? .object : .array
        lastContainerCount = frame.count
    }

    /// Called at the first byte of every value.
    @inline(__always)
    mutating func beginValue() {
        let depth = frames.count
        guard depth > 0 else { return }
        let top = depth - 1
        if !frames[top].isObject {
            frames[top].count += 1
            return
        }
        if depth == 1 {
            topValueStart = i
            inPrompt = frames[0].tag.isPrompt
            return
        }
        switch frames[top].tag {
        case .image, .document:
            mediaOwnerDepth = depth
            mediaStart = i
            mediaIsImage = frames[top].tag == .image
        case .nestedMaxTokens:
            nestedValueStart = i
        default:
            break
        }
    }

    /// Called after every value (scalar or container) ended; `i` is just past it.
    @inline(__always)
    mutating func valueEnded() throws(Failure) {
        let depth = frames.count
        if depth == mediaOwnerDepth {
            mediaBytes += i - mediaStart
            mediaOwnerDepth = -1
            if mediaIsImage { out.imageCount += 1 } else { out.documentCount += 1 }
        }
        if depth == 1 {
            try topLevelValueEnded()
        } else if depth == 2 && frames[1].isObject && frames[1].tag == .nestedMaxTokens {
            switch lastKind {
            case .null: out.completionArgsMaxTokens = nil
            case .number:
                out.completionArgsMaxTokens = try integerField("completion_args.max_tokens", minimum: 0)
            default:
                throw .invalidField(name: "completion_args.max_tokens", requirement: "a non-negative integer")
            }
        }
    }

    mutating func topLevelValueEnded() throws(Failure) {
        let tag = frames[0].tag
        if tag.isPrompt {
            promptRawBytes += i - topValueStart
            inPrompt = false
        }
        switch tag {
        case .other, .promptText, .completionArgs, .image, .document, .nestedMaxTokens:
            break
        case .messages:
            if lastKind == .array { out.messageCount += lastContainerCount }
        case .inputs:
            if lastKind == .array { out.messageCount += lastContainerCount } else if lastKind == .string { out.messageCount += 1 }
        case .input:
            if lastKind == .array { out.inputCount = lastContainerCount } else if lastKind == .string { out.inputCount = 1 } else { out.inputCount = 0 }
        case .model:
            switch lastKind {
            case .string: out.model = lastString()
            case .null: out.model = nil
            default: throw .invalidField(name: "model", requirement: "a string")
            }
        case .agentID:
            switch lastKind {
            case .string: out.agentID = lastString()
            case .null: out.agentID = nil
            default: throw .invalidField(name: "agent_id", requirement: "a string")
            }
        case .stream:
            switch lastKind {
            case .true: out.stream = true
            case .false, .null: out.stream = false
            default: throw .invalidField(name: "stream", requirement: "a boolean")
            }
        case .maxTokens:
            switch lastKind {
            case .null:
                out.maxTokens = nil
                maxTokensNull = topValueStart..<i
            case .number:
                out.maxTokens = try integerField("max_tokens", minimum: 0)
                maxTokensNull = nil
            default:
                throw .invalidField(name: "max_tokens", requirement: "a non-negative integer")
            }
        case .n:
            switch lastKind {
            case .null: out.n = nil
            case .number: out.n = try integerField("n", minimum: 1)
            default: throw .invalidField(name: "n", requirement: "an integer of at least 1")
            }
        case .safePrompt:
            out.safePrompt = lastKind == .true
        case .promptMode:
            promptMode = lastKind != .null
        }
    }

    // MARK: Keys

    mutating func processKey(start: Int, end: Int, escaped: Bool, quoteOffset: Int) throws(Failure) {
        let entry: KeyEntry
        if escaped {
            decodeJSONString(p, start, end, into: &scratchA)
            let hash = scratchA.withUnsafeBufferPointer { fnv1a($0.baseAddress, $0.count) }
            entry = KeyEntry(start: start, end: end, escaped: true, hash: hash, length: scratchA.count)
        } else {
            entry = KeyEntry(start: start, end: end, escaped: false, hash: fnv1a(p + start, end - start), length: end - start)
        }
        try checkDuplicate(entry, quoteOffset: quoteOffset)
        keys.append(entry)
        let depth = frames.count
        frames[depth - 1].count += 1

        var tag = KeyTag.other
        if depth == 1 {
            for (name, fieldTag) in topLevelFields where keyEquals(entry, name) {
                tag = fieldTag
                break
            }
        } else if inPrompt {
            if depth == 2 && frames[0].tag == .completionArgs && keyEquals(entry, "max_tokens") {
                tag = .nestedMaxTokens
            } else if mediaOwnerDepth < 0 {
                if keyEquals(entry, "image_url") {
                    tag = .image
                } else if keyEquals(entry, "document_url") || keyEquals(entry, "file_id") {
                    tag = .document
                }
            }
        }
        frames[depth - 1].tag = tag
    }

    mutating func checkDuplicate(_ entry: KeyEntry, quoteOffset: Int) throws(Failure) {
        let top = frames.count - 1
        let start = frames[top].keysStart
        if frames[top].largeSet < 0 {
            if keys.count - start < 16 {
                for index in start..<keys.count where keys[index].hash == entry.hash && keys[index].length == entry.length {
                    if keysEqual(keys[index], entry) { throw duplicate(entry, quoteOffset: quoteOffset) }
                }
                return
            }
            var set = Set<Int>(minimumCapacity: 64)
            for index in start..<keys.count { set.insert(seededHash(keys[index])) }
            largeSets.append(set)
            frames[top].largeSet = largeSets.count - 1
        }
        let hash = seededHash(entry)
        if !largeSets[frames[top].largeSet].insert(hash).inserted {
            // Same seeded hash: a duplicate, or (with negligible probability) a collision.
            for index in start..<keys.count where keys[index].hash == entry.hash && keys[index].length == entry.length {
                if keysEqual(keys[index], entry) { throw duplicate(entry, quoteOffset: quoteOffset) }
            }
        }
    }

    mutating func keyEquals(_ entry: KeyEntry, _ name: StaticString) -> Bool {
        let count = name.utf8CodeUnitCount
        guard entry.length == count else { return false }
        let bytes = name.utf8Start
        if !entry.escaped {
            for k in 0..<count where p[entry.start + k] != bytes[k] { return false }
            return true
        }
        decodeJSONString(p, entry.start, entry.end, into: &scratchA)
        for k in 0..<count where scratchA[k] != bytes[k] { return false }
        return true
    }

    mutating func keysEqual(_ a: KeyEntry, _ b: KeyEntry) -> Bool {
        guard a.length == b.length else { return false }
        if !a.escaped && !b.escaped {
            for k in 0..<a.length where p[a.start + k] != p[b.start + k] { return false }
            return true
        }
        decodeJSONString(p, a.start, a.end, into: &scratchA)
        decodeJSONString(p, b.start, b.end, into: &scratchB)
        return scratchA == scratchB
    }

    mutating func seededHash(_ entry: KeyEntry) -> Int {
        var hasher = Hasher()
        if entry.escaped {
            decodeJSONString(p, entry.start, entry.end, into: &scratchA)
            scratchA.withUnsafeBytes { hasher.combine(bytes: $0) }
        } else {
            hasher.combine(bytes: UnsafeRawBufferPointer(start: p + entry.start, count: entry.end - entry.start))
        }
        return hasher.finalize()
    }

    mutating func duplicate(_ entry: KeyEntry, quoteOffset: Int) -> Failure {
        var path = ""
        for index in 0..<(frames.count - 1) {
            let frame = frames[index]
            if frame.isObject {
                let key = keys[frames[index + 1].keysStart - 1]
                if !path.isEmpty { path += "." }
                path += displayKey(key)
            } else {
                path += "[\(frame.count - 1)]"
            }
        }
        return .duplicateKey(key: displayKey(entry), path: path, offset: quoteOffset)
    }

    /// The key for an error message: decoded, control characters replaced, at most 64 characters.
    mutating func displayKey(_ entry: KeyEntry) -> String {
        decodeJSONString(p, entry.start, entry.end, into: &scratchA)
        var text = String(decoding: scratchA, as: UTF8.self)
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            text = String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : $0 }))
        }
        if text.count > 64 { text = String(text.prefix(64)) + "…" }
        return text
    }

    mutating func lastString() -> String {
        if !lastStringEscaped {
            return String(decoding: UnsafeBufferPointer(start: p + lastStart, count: lastEnd - lastStart), as: UTF8.self)
        }
        decodeJSONString(p, lastStart, lastEnd, into: &scratchA)
        return String(decoding: scratchA, as: UTF8.self)
    }

    // MARK: Integers

    /// The last number as an integer ≥ `minimum`, read the way Python/pydantic reads it.
    func integerField(_ name: String, minimum: Int) throws(Failure) -> Int {
        let requirement = minimum == 0 ? "a non-negative integer" : "an integer of at least \(minimum)"
        let limit = RequestInspector.maximumIntegerValue
        var value = 0
        if lastNumberIsInteger {
            var k = lastStart
            let negative = p[k] == ASCII.minus
            if negative { k += 1 }
            while k < lastEnd {
                value = value * 10 + Int(p[k] &- ASCII.zero)
                if value > limit { throw .invalidField(name: name, requirement: "\(requirement) no greater than \(limit)") }
                k += 1
            }
            if negative && value != 0 { throw .invalidField(name: name, requirement: requirement) }
        } else {
            let text = String(decoding: UnsafeBufferPointer(start: p + lastStart, count: lastEnd - lastStart), as: UTF8.self)
            guard let double = Double(text), double.isFinite, double.rounded(.towardZero) == double else {
                throw .invalidField(name: name, requirement: requirement)
            }
            if double < 0 && double != 0 { throw .invalidField(name: name, requirement: requirement) }
            guard double <= Double(limit) else {
                throw .invalidField(name: name, requirement: "\(requirement) no greater than \(limit)")
            }
            value = Int(double)
        }
        guard value >= minimum else { throw .invalidField(name: name, requirement: requirement) }
        return value
    }

    // MARK: Scalars

    /// Scans the string whose opening quote is at `i`; leaves `i` after the closing quote.
    /// Returns the content range and whether it contains escapes.
    @inline(__always)
    mutating func scanString() throws(Failure) -> (Int, Int, Bool) {
        let start = i + 1
        var j = start
        var escaped = false
        while true {
            // Eight bytes at a time while none is `"`, `\`, a control character or non-ASCII.
            while j + 8 <= n {
                let word = UnsafeRawPointer(p + j).loadUnaligned(as: UInt64.self)
                let ones: UInt64 = 0x0101_0101_0101_0101
                let high: UInt64 = 0x8080_8080_8080_8080
                let quote = word ^ (ones &* 0x22)
                let backslash = word ^ (ones &* 0x5C)
                let special = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | (word &- ones &* 0x20) | word
                if special & high != 0 { break }
                j += 8
            }
            guard j < n else { throw .invalidJSON(offset: n, reason: .unterminatedString) }
            let byte = p[j]
            if byte &- 0x20 < 0x60 {  // printable ASCII
                if byte == ASCII.quote {
                    i = j + 1
                    return (start, j, escaped)
                }
                if byte == ASCII.backslash {
                    escaped = true
                    j = try scanEscape(j)
                } else {
                    j += 1
                }
            } else if byte < 0x20 {
                throw .invalidJSON(offset: j, reason: .controlCharacterInString)
            } else {
                guard let next = utf8SequenceEnd(j) else { throw .invalidJSON(offset: j, reason: .invalidUTF8) }
                j = next
            }
        }
    }

    /// `p[j]` is a backslash; returns the index after the escape sequence.
    @inline(__always)
    func scanEscape(_ j: Int) throws(Failure) -> Int {
        guard j + 1 < n else { throw .invalidJSON(offset: n, reason: .unterminatedString) }
        switch p[j + 1] {
        case ASCII.quote, ASCII.backslash, UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return j + 2
        case UInt8(ascii: "u"):
            guard let unit = hex4(p, n, j + 2) else { throw .invalidJSON(offset: j, reason: .invalidEscape) }
            if unit >= 0xD800 && unit <= 0xDBFF {
                guard j + 7 < n, p[j + 6] == ASCII.backslash, p[j + 7] == UInt8(ascii: "u"),
                      let low = hex4(p, n, j + 8), low >= 0xDC00 && low <= 0xDFFF else {
                    throw .invalidJSON(offset: j, reason: .loneSurrogate)
                }
                return j + 12
            }
            if unit >= 0xDC00 && unit <= 0xDFFF { throw .invalidJSON(offset: j, reason: .loneSurrogate) }
            return j + 6
        default:
            throw .invalidJSON(offset: j, reason: .invalidEscape)
        }
    }

    /// `p[j] >= 0x80`: the index after a well-formed UTF-8 sequence, or nil.
    @inline(__always)
    func utf8SequenceEnd(_ j: Int) -> Int? {
        @inline(__always) func isContinuation(_ k: Int) -> Bool { k < n && p[k] & 0xC0 == 0x80 }
        @inline(__always) func inRange(_ k: Int, _ low: UInt8, _ high: UInt8) -> Bool { k < n && p[k] >= low && p[k] <= high }
        switch p[j] {
        case 0xC2...0xDF:
            return isContinuation(j + 1) ? j + 2 : nil
        case 0xE0:
            return inRange(j + 1, 0xA0, 0xBF) && isContinuation(j + 2) ? j + 3 : nil
        case 0xE1...0xEC, 0xEE...0xEF:
            return isContinuation(j + 1) && isContinuation(j + 2) ? j + 3 : nil
        case 0xED:
            return inRange(j + 1, 0x80, 0x9F) && isContinuation(j + 2) ? j + 3 : nil
        case 0xF0:
            return inRange(j + 1, 0x90, 0xBF) && isContinuation(j + 2) && isContinuation(j + 3) ? j + 4 : nil
        case 0xF1...0xF3:
            return isContinuation(j + 1) && isContinuation(j + 2) && isContinuation(j + 3) ? j + 4 : nil
        case 0xF4:
            return inRange(j + 1, 0x80, 0x8F) && isContinuation(j + 2) && isContinuation(j + 3) ? j + 4 : nil
        default:
            return nil
        }
    }

    @inline(__always)
    mutating func scanNumber() throws(Failure) {
        let start = i
        var j = i
        @inline(__always) func isDigit(_ k: Int) -> Bool { k < n && p[k] >= ASCII.zero && p[k] <= ASCII.nine }
        if p[j] == ASCII.minus { j += 1 }
        guard isDigit(j) else { throw .invalidJSON(offset: j, reason: .invalidNumber) }
        if p[j] == ASCII.zero {
            j += 1
        } else {
            while isDigit(j) { j += 1 }
        }
        var integer = true
        if j < n && p[j] == ASCII.dot {
            integer = false
            j += 1
            guard isDigit(j) else { throw .invalidJSON(offset: j, reason: .invalidNumber) }
            while isDigit(j) { j += 1 }
        }
        if j < n && (p[j] == UInt8(ascii: "e") || p[j] == UInt8(ascii: "E")) {
            integer = false
            j += 1
            if j < n && (p[j] == ASCII.plus || p[j] == ASCII.minus) { j += 1 }
            guard isDigit(j) else { throw .invalidJSON(offset: j, reason: .invalidNumber) }
            while isDigit(j) { j += 1 }
        }
        lastKind = .number
        lastStart = start
        lastEnd = j
        lastNumberIsInteger = integer
        i = j
    }

    @inline(__always)
    mutating func scanLiteral(_ literal: StaticString) throws(Failure) {
        let count = literal.utf8CodeUnitCount
        let bytes = literal.utf8Start
        for k in 0..<count {
            guard i + k < n else { throw .invalidJSON(offset: n, reason: .unexpectedEnd) }
            guard p[i + k] == bytes[k] else { throw .invalidJSON(offset: i + k, reason: .invalidLiteral) }
        }
        i += count
    }
}

// MARK: - Helpers

@inline(__always)
private func hex4(_ p: UnsafePointer<UInt8>, _ n: Int, _ j: Int) -> Int? {
    guard j + 4 <= n else { return nil }
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

@inline(__always)
private func fnv1a(_ start: UnsafePointer<UInt8>?, _ count: Int) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    guard let start else { return hash }
    for k in 0..<count {
        hash = (hash ^ UInt64(start[k])) &* 0x0000_0100_0000_01B3
    }
    return hash
}

/// Decodes the (already validated) JSON string content `p[start..<end]` into `out` as UTF-8.
/// Lone surrogates (which validation rejects) would decode to U+FFFD.
private func decodeJSONString(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, into out: inout [UInt8]) {
    out.removeAll(keepingCapacity: true)
    var j = start
    while j < end {
        let byte = p[j]
        guard byte == 0x5C, j + 1 < end else {
            out.append(byte)
            j += 1
            continue
        }
        let kind = p[j + 1]
        switch kind {
        case UInt8(ascii: "b"): out.append(0x08); j += 2
        case UInt8(ascii: "f"): out.append(0x0C); j += 2
        case UInt8(ascii: "n"): out.append(0x0A); j += 2
        case UInt8(ascii: "r"): out.append(0x0D); j += 2
        case UInt8(ascii: "t"): out.append(0x09); j += 2
        case UInt8(ascii: "u"):
            var scalar = hex4(p, end, j + 2) ?? 0xFFFD
            j += 6
            if scalar >= 0xD800 && scalar <= 0xDBFF {
                if j + 1 < end, p[j] == 0x5C, p[j + 1] == UInt8(ascii: "u"), let low = hex4(p, end, j + 2), low >= 0xDC00 && low <= 0xDFFF {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    j += 6
                } else {
                    scalar = 0xFFFD
                }
            } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                scalar = 0xFFFD
            }
            appendUTF8(scalar, to: &out)
        default:
            out.append(kind)  // \" \\ \/
            j += 2
        }
    }
}

@inline(__always)
private func appendUTF8(_ scalar: Int, to out: inout [UInt8]) {
    switch scalar {
    case 0..<0x80:
        out.append(UInt8(scalar))
    case 0x80..<0x800:
        out.append(UInt8(0xC0 | scalar >> 6))
        out.append(UInt8(0x80 | scalar & 0x3F))
    case 0x800..<0x10000:
        out.append(UInt8(0xE0 | scalar >> 12))
        out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
        out.append(UInt8(0x80 | scalar & 0x3F))
    default:
        out.append(UInt8(0xF0 | scalar >> 18))
        out.append(UInt8(0x80 | scalar >> 12 & 0x3F))
        out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
        out.append(UInt8(0x80 | scalar & 0x3F))
    }
}
