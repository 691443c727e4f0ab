import NIOCore

/// Sets a top-level `"max_tokens":N` in a body the client sent without one, without re-serialising
/// anything else: the rest of the bytes are copied unchanged.
///
/// - absent: `"max_tokens":N,` is inserted right after the top-level `{` (no comma for `{}`);
/// - `"max_tokens": null`: the `null` is replaced by `N`;
/// - a value was sent: nothing to do (`nil`).
///
/// Only for endpoints whose schema has a top-level `max_tokens` (chat completions, FIM, agents
/// completions); Mistral answers 422 `extra_forbidden` to it anywhere else (embeddings,
/// conversations, which use `completion_args.max_tokens`, OCR…). The caller picks the endpoint.
public enum MaxTokensInjection {
    /// New body bytes with `max_tokens` set to `maxTokens`, or nil when the client already set it.
    /// - Parameters:
    ///   - body: exactly the bytes `inspected` came from.
    ///   - maxTokens: a non-negative value.
    public static func inject(maxTokens: Int, into body: ByteBuffer, inspected: InspectedRequest) -> ByteBuffer? {
        guard case .some(let edit) = edit(maxTokens: maxTokens, bodyLength: body.readableBytes, inspected: inspected) else {
            return nil
        }
        var out = ByteBuffer()
        out.reserveCapacity(body.readableBytes + edit.insertion.count)
        body.withUnsafeReadableBytes { raw in
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[0..<edit.replaced.lowerBound]))
            out.writeBytes(edit.insertion)
            out.writeBytes(UnsafeRawBufferPointer(rebasing: raw[edit.replaced.upperBound...]))
        }
        return out
    }

    /// `[UInt8]` variant of `inject(maxTokens:into:inspected:)`.
    public static func inject(maxTokens: Int, into body: [UInt8], inspected: InspectedRequest) -> [UInt8]? {
        guard case .some(let edit) = edit(maxTokens: maxTokens, bodyLength: body.count, inspected: inspected) else {
            return nil
        }
        var out: [UInt8] = []
        out.reserveCapacity(body.count + edit.insertion.count)
        out.append(contentsOf: body[0..<edit.replaced.lowerBound])
        out.append(contentsOf: edit.insertion)
        out.append(contentsOf: body[edit.replaced.upperBound...])
        return out
    }

    private struct Edit {
        var replaced: Range<Int>
        var insertion: [UInt8]
    }

    private static func edit(maxTokens: Int, bodyLength: Int, inspected: InspectedRequest) -> Edit? {
        precondition(maxTokens >= 0, "max_tokens must be non-negative")
        precondition(bodyLength == inspected.bodyLength, "the body is not the one that was inspected")
        let number = Array(String(maxTokens).utf8)
        switch inspected.injectionPoint {
        case .none:
            return nil
        case .replaceNull(let range):
            return Edit(replaced: range, insertion: number)
        case .afterBrace(let offset, let emptyObject):
            var insertion = Array("\"max_tokens\":".utf8)
            insertion.append(contentsOf: number)
            if !emptyObject { insertion.append(UInt8(ascii: ",")) }
            return Edit(replaced: (offset + 1)..<(offset + 1), insertion: insertion)
        }
    }
}
