/// The format shared by virtual keys (`tg_live_…`) and admin tokens (`tg_admin_…`):
/// prefix + 32 random base62 characters + 6 base62 characters of the CRC-32 of everything before it.
///
/// 32 base62 characters carry ~190 bits of entropy. The checksum lets the data plane reject a
/// malformed or mistyped key without a database query; it is not a security feature.
public struct SecretToken: Sendable, Hashable {
    public enum Kind: String, Sendable, CaseIterable {
        case virtualKey = "tg_live_"
        case adminToken = "tg_admin_"
    }

    public static let randomLength = 32
    public static let checksumLength = 6
    /// Characters shown in listings and logs so people can tell keys apart: the prefix plus a few
    /// random characters (12 for virtual keys, as documented).
    public static func displayPrefixLength(for kind: Kind) -> Int { kind.rawValue.count + 4 }

    public let kind: Kind
    /// The full secret. Never log or store it; store `SecretHasher.hash(token.value)` instead.
    public let value: String

    public var displayPrefix: String { String(value.prefix(Self.displayPrefixLength(for: kind))) }

    public static func generate(_ kind: Kind) -> SecretToken {
        var generator = SystemRandomNumberGenerator()
        return generate(kind, using: &generator)
    }

    public static func generate<G: RandomNumberGenerator>(_ kind: Kind, using generator: inout G) -> SecretToken {
        let body = kind.rawValue + Base62.random(count: randomLength, using: &generator)
        return SecretToken(kind: kind, value: body + checksum(of: body))
    }

    /// Validates prefix, length, alphabet and checksum. Does no I/O.
    public static func parse(_ text: some StringProtocol, as kind: Kind) throws(SecretTokenError) -> SecretToken {
        let utf8 = Array(text.utf8)
        let prefix = Array(kind.rawValue.utf8)
        guard utf8.count == prefix.count + randomLength + checksumLength else { throw .malformed }
        guard utf8.starts(with: prefix) else { throw .malformed }
        let rest = utf8[prefix.count...]
        guard rest.allSatisfy(Base62.isBase62) else { throw .malformed }
        let body = String(decoding: utf8.dropLast(checksumLength), as: UTF8.self)
        let given = String(decoding: utf8.suffix(checksumLength), as: UTF8.self)
        guard checksum(of: body) == given else { throw .badChecksum }
        return SecretToken(kind: kind, value: String(text))
    }

    static func checksum(of body: String) -> String {
        Base62.encode(UInt64(CRC32.checksum(body.utf8)), width: checksumLength)
    }

    private init(kind: Kind, value: String) {
        self.kind = kind
        self.value = value
    }
}

public enum SecretTokenError: Error, Equatable {
    case malformed
    case badChecksum
}
