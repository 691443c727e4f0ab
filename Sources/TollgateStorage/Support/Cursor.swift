import Foundation

/// An opaque pagination cursor: the `(created_at, id)` of the last row of a page, which keeps
/// pages stable while rows are inserted. Timestamps travel as integer microseconds (Postgres'
/// precision) so no floating-point rounding can skip or repeat a row.
public struct PageCursor: Sendable, Hashable {
    public let createdAtMicros: Int64
    public let id: UUID

    public init(createdAtMicros: Int64, id: UUID) {
        self.createdAtMicros = createdAtMicros
        self.id = id
    }

    public var encoded: String {
        Data("\(createdAtMicros)|\(id.uuidString.lowercased())".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public init?(encoded text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let plain = String(data: data, encoding: .utf8) else { return nil }
        let parts = plain.split(separator: "|")
        guard parts.count == 2, let micros = Int64(parts[0]), let id = UUID(uuidString: String(parts[1])) else {
            return nil
        }
        self.init(createdAtMicros: micros, id: id)
    }
}

public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var next: PageCursor?
}

/// A cursor for lists ordered by a bigint id, newest first (the audit log).
public struct SequenceCursor: Sendable, Hashable {
    public let beforeID: Int64
    public init(beforeID: Int64) { self.beforeID = beforeID }
    public var encoded: String { "a\(beforeID)" }
    public init?(encoded text: String) {
        guard text.hasPrefix("a"), let id = Int64(text.dropFirst()) else { return nil }
        beforeID = id
    }
}
