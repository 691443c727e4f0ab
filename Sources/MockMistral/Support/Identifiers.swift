/// Identifier formats copied from live responses: 32 lowercase hex characters for completion ids and
/// request ids, 9 alphanumerics for tool-call ids (mistral-common rejects anything else).
enum Identifiers {
    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)
    private static let alphanumerics: [UInt8] = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)

    /// 32 hex characters, e.g. `a2984449b4204304a731f30927977d5c`.
    static func hex32() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return String(unsafeUninitializedCapacity: 32) { buffer in
            for index in 0..<16 {
                buffer[index] = hex[Int((high >> UInt64(60 - index * 4)) & 0xF)]
                buffer[16 + index] = hex[Int((low >> UInt64(60 - index * 4)) & 0xF)]
            }
            return 32
        }
    }

    /// 9 characters from `[a-zA-Z0-9]`, e.g. `gSIMJiOkT`.
    static func toolCallID() -> String {
        var generator = SystemRandomNumberGenerator()
        var bits = generator.next() as UInt64
        return String(unsafeUninitializedCapacity: 9) { buffer in
            for index in 0..<9 {
                buffer[index] = alphanumerics[Int(bits % 62)]
                bits /= 62
            }
            return 9
        }
    }

    /// UUID-shaped id (mistral-correlation-id).
    static func uuid() -> String {
        let h = hex32()
        var result = ""
        result.reserveCapacity(36)
        for (index, character) in h.enumerated() {
            if index == 8 || index == 12 || index == 16 || index == 20 { result.append("-") }
            result.append(character)
        }
        return result
    }

    static func isToolCallID(_ id: String) -> Bool {
        id.utf8.count == 9 && id.utf8.allSatisfy { alphanumerics.contains($0) }
    }
}
