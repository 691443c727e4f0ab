/// Identifier formats copied from live responses: 32 lowercase hex characters for completion ids and
/// request ids, 9 alphanumerics for tool-call ids (mistral-common rejects anything else).
///
/// Ids must be unique and random-looking, not secret: they come from a SplitMix64 stream seeded once
/// from the system generator, because a getrandom syscall per id showed up at benchmark rates.
enum Identifiers {
    private static let counter = Locked<UInt64>(UInt64.random(in: .min ... .max))

    private static func random() -> UInt64 {
        var z = counter.withLockedValue { state -> UInt64 in
            state &+= 0x9E37_79B9_7F4A_7C15
            return state
        }
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)
    private static let alphanumerics: [UInt8] = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)

    /// 32 hex characters, e.g. `a2984449b4204304a731f30927977d5c`.
    static func hex32() -> String {
        let high = random()
        let low = random()
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
        var bits = random()
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
        let high = random()
        let low = random()
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var out = 0
            for index in 0..<32 {
                if index == 8 || index == 12 || index == 16 || index == 20 {
                    buffer[out] = UInt8(ascii: "-")
                    out += 1
                }
                let word = index < 16 ? high : low
                buffer[out] = hex[Int((word >> UInt64(60 - (index % 16) * 4)) & 0xF)]
                out += 1
            }
            return 36
        }
    }

    static func isToolCallID(_ id: String) -> Bool {
        id.utf8.count == 9 && id.utf8.allSatisfy { alphanumerics.contains($0) }
    }
}
