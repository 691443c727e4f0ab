/// A model allow-list entry: an exact model id, or a glob where `*` matches any run of characters
/// (`mistral-small-*`, `*-latest`, `*`). Matching is case-sensitive, as Mistral's model ids are.
public struct ModelPattern: Sendable, Hashable, CustomStringConvertible {
    public let pattern: String

    public init(_ pattern: String) throws(ModelPatternError) {
        guard !pattern.isEmpty, pattern.utf8.count <= 128 else { throw .invalid(pattern) }
        guard pattern.unicodeScalars.allSatisfy({ Self.allowed.contains($0) }) else { throw .invalid(pattern) }
        self.pattern = pattern
    }

    public var description: String { pattern }

    public func matches(_ model: String) -> Bool {
        Self.glob(Array(pattern.utf8)[...], Array(model.utf8)[...])
    }

    private static let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/*".unicodeScalars)

    /// Iterative glob match with single-star backtracking: linear in practice, no recursion.
    private static func glob(_ pattern: ArraySlice<UInt8>, _ text: ArraySlice<UInt8>) -> Bool {
        let star = UInt8(ascii: "*")
        var p = pattern.startIndex, t = text.startIndex
        var starP: Int? = nil, starT = text.startIndex
        while t < text.endIndex {
            if p < pattern.endIndex, pattern[p] == star {
                starP = p; starT = t; p += 1
            } else if p < pattern.endIndex, pattern[p] == text[t] {
                p += 1; t += 1
            } else if let sp = starP {
                p = sp + 1; starT += 1; t = starT
            } else {
                return false
            }
        }
        while p < pattern.endIndex, pattern[p] == star { p += 1 }
        return p == pattern.endIndex
    }
}

public enum ModelPatternError: Error, Equatable, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self {
        case .invalid(let p): "'\(p)' is not a model name or glob (letters, digits, - _ . : / and *; at most 128 characters)"
        }
    }
}

/// A key's model allow-list. An empty list allows every model.
public struct ModelAllowList: Sendable, Hashable {
    public let patterns: [ModelPattern]

    public init(_ patterns: [ModelPattern]) { self.patterns = patterns }

    public init(parsing entries: [String]) throws(ModelPatternError) {
        var patterns: [ModelPattern] = []
        for entry in entries { patterns.append(try ModelPattern(entry)) }
        self.patterns = patterns
    }

    public func allows(_ model: String) -> Bool {
        patterns.isEmpty || patterns.contains { $0.matches(model) }
    }
}
