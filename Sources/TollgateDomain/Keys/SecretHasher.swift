import Crypto
import Foundation

/// Hashes virtual keys and admin tokens for storage and lookup: HMAC-SHA256 under a server-side
/// pepper. A stolen database alone cannot be used to test guesses offline, and the hash is
/// deterministic so lookup is a single indexed equality.
public struct SecretHasher: Sendable {
    private let pepper: SymmetricKey

    public init(pepper: SymmetricKey) throws(SecretHasherError) {
        guard pepper.bitCount >= 256 else { throw .pepperTooShort(bytes: pepper.bitCount / 8) }
        self.pepper = pepper
    }

    /// Reads `TOLLGATE_KEY_PEPPER` (base64, at least 32 bytes).
    public static func load(environment: [String: String]) throws(SecretHasherError) -> SecretHasher {
        guard let text = environment["TOLLGATE_KEY_PEPPER"], !text.isEmpty else { throw .missing }
        guard let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw .notBase64
        }
        return try SecretHasher(pepper: SymmetricKey(data: bytes))
    }

    public static func generatePepper() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    public func hash(_ secret: String) -> [UInt8] {
        var secret = secret
        return secret.withUTF8 { Array(HMAC<SHA256>.authenticationCode(for: UnsafeRawBufferPointer($0), using: pepper)) }
    }
}

public enum SecretHasherError: Error, Equatable, CustomStringConvertible {
    case missing
    case notBase64
    case pepperTooShort(bytes: Int)

    public var description: String {
        switch self {
        case .missing: "TOLLGATE_KEY_PEPPER is not set (base64 of at least 32 random bytes)"
        case .notBase64: "TOLLGATE_KEY_PEPPER is not valid base64"
        case .pepperTooShort(let bytes): "TOLLGATE_KEY_PEPPER is \(bytes) bytes; at least 32 are required"
        }
    }
}
