/// A parsed JSON value that remembers the byte range it came from.
///
/// The mock parses request bodies itself (instead of JSONSerialization/Codable) because it needs
/// three things Foundation does not give cheaply: the exact bytes of a value (validation errors echo
/// the client's `input` verbatim, and the usage rule counts raw bytes of tool definitions), key order
/// (pydantic reports extra fields in input order), and no bridging cost on the hot path.
struct JSONValue: Sendable {
    enum Kind: Sendable {
        case null
        case bool(Bool)
        case number(Double)
        case string(String)
        case array([JSONValue])
        case object(JSONObject)
    }

    var kind: Kind
    /// Byte offsets of this value inside the parsed document.
    var range: Range<Int>

    var isNull: Bool { if case .null = kind { return true } else { return false } }
    var string: String? { if case .string(let s) = kind { return s } else { return nil } }
    var bool: Bool? { if case .bool(let b) = kind { return b } else { return nil } }
    var number: Double? { if case .number(let d) = kind { return d } else { return nil } }
    var array: [JSONValue]? { if case .array(let a) = kind { return a } else { return nil } }
    var object: JSONObject? { if case .object(let o) = kind { return o } else { return nil } }

    /// An integer the way pydantic's lax mode accepts it: a JSON number with no fractional part.
    var integer: Int? {
        guard case .number(let d) = kind, d.rounded(.towardZero) == d, abs(d) < 9.0e15 else { return nil }
        return Int(d)
    }

    subscript(key: String) -> JSONValue? { object?[key] }
}

/// Object members in document order. Bodies have a handful of keys, so a linear scan beats hashing.
struct JSONObject: Sendable {
    var members: [(key: String, value: JSONValue)]

    subscript(key: String) -> JSONValue? {
        for member in members where member.key == key { return member.value }
        return nil
    }

    /// The value for `key` unless it is absent or JSON null (pydantic treats both as "not set" for
    /// optional fields).
    func nonNull(_ key: String) -> JSONValue? {
        guard let value = self[key], !value.isNull else { return nil }
        return value
    }
}

/// A parsed document: the root value plus the source bytes its ranges point into.
struct JSONDocument: Sendable {
    let bytes: [UInt8]
    let root: JSONValue

    init(bytes: [UInt8]) throws(JSONParseError) {
        self.bytes = bytes
        self.root = try JSONParser.parse(bytes)
    }

    /// The exact bytes the client sent for `value`.
    func raw(_ value: JSONValue) -> ArraySlice<UInt8> { bytes[value.range] }
    func rawCount(_ value: JSONValue) -> Int { value.range.count }
}
