import NIOCore

/// Precomputed embedding vectors, already serialised. Serialising 1024 floats per input per
/// request would dominate an embeddings benchmark; instead each (dimension, variant) is rendered
/// once and copied into responses. The variant is picked from a hash of the input text, so equal
/// inputs get equal vectors and different inputs (usually) different ones.
final class EmbeddingVectors: Sendable {
    static let shared = EmbeddingVectors()
    static let variants = 8
    static let maximumDimension = 3072

    private struct Rendered {
        var json: [ByteBuffer]
        var base64: [ByteBuffer]
    }

    private let cache = Locked<[Int: Rendered]>([:])

    private init() {
        // Warm the two default sizes so the first request is as fast as the rest.
        _ = rendered(dimension: 1024)
        _ = rendered(dimension: 1536)
    }

    /// `[0.01, -0.02, …]` for the given dimension and input.
    func json(dimension: Int, input: String) -> ByteBuffer {
        rendered(dimension: dimension).json[Self.variant(of: input)]
    }

    /// Base64 of little-endian float32 values (`encoding_format: "base64"`), quoted.
    func base64(dimension: Int, input: String) -> ByteBuffer {
        rendered(dimension: dimension).base64[Self.variant(of: input)]
    }

    static func variant(of input: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in input.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(variants))
    }

    /// The raw unit vector, for tests that want to check norms.
    static func values(dimension: Int, variant: Int) -> [Float] {
        var state = UInt64(truncatingIfNeeded: variant &* 0x9E37_79B9 &+ dimension)
        var values = [Double](repeating: 0, count: dimension)
        var norm = 0.0
        for index in 0..<dimension {
            // Sum of uniforms ≈ Gaussian, so values look like real embeddings (mostly small, signed).
            var sum = 0.0
            for _ in 0..<4 { sum += Double(splitMix(&state) >> 11) / Double(1 << 53) - 0.5 }
            values[index] = sum
            norm += sum * sum
        }
        norm = norm.squareRoot()
        // Quantise like the live values (e.g. -0.0389404296875 = k / 2^15): short, exact decimals.
        return values.map { Float(($0 / norm * 32768).rounded() / 32768) }
    }

    private func rendered(dimension: Int) -> Rendered {
        if let hit = cache.withLockedValue({ $0[dimension] }) { return hit }
        var json: [ByteBuffer] = []
        var base64: [ByteBuffer] = []
        for variant in 0..<Self.variants {
            let values = Self.values(dimension: dimension, variant: variant)
            var buffer = ByteBuffer()
            buffer.reserveCapacity(dimension * 12)
            buffer.writeLiteral("[")
            for (index, value) in values.enumerated() {
                if index > 0 { buffer.writeLiteral(",") }
                buffer.writeString(String(Double(value)))
            }
            buffer.writeLiteral("]")
            json.append(buffer)

            var bytes: [UInt8] = []
            bytes.reserveCapacity(dimension * 4)
            for value in values {
                let bits = value.bitPattern.littleEndian
                withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
            }
            var encoded = ByteBuffer()
            encoded.writeLiteral("\"")
            encoded.writeString(Base64.encode(bytes))
            encoded.writeLiteral("\"")
            base64.append(encoded)
        }
        let result = Rendered(json: json, base64: base64)
        cache.withLockedValue { $0[dimension] = result }
        return result
    }

    private static func splitMix(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Base64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 2 < bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            output.append(alphabet[Int(chunk >> 18 & 63)])
            output.append(alphabet[Int(chunk >> 12 & 63)])
            output.append(alphabet[Int(chunk >> 6 & 63)])
            output.append(alphabet[Int(chunk & 63)])
            index += 3
        }
        let remaining = bytes.count - index
        if remaining > 0 {
            var chunk = UInt32(bytes[index]) << 16
            if remaining == 2 { chunk |= UInt32(bytes[index + 1]) << 8 }
            output.append(alphabet[Int(chunk >> 18 & 63)])
            output.append(alphabet[Int(chunk >> 12 & 63)])
            output.append(remaining == 2 ? alphabet[Int(chunk >> 6 & 63)] : UInt8(ascii: "="))
            output.append(UInt8(ascii: "="))
        }
        return String(decoding: output, as: UTF8.self)
    }
}
