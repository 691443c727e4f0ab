import Crypto
import Foundation
import Testing
@testable import TollgateDomain

@Suite struct SecretTokenTests {
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

    // MARK: CRC-32 and Base62

    @Test func crc32KnownVectors() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        #expect(CRC32.checksum(Array("a".utf8)) == 0xE8B7_BE43)
        #expect(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x414F_A339)
    }

    @Test func crc32MatchesBitwiseReference() {
        var rng = TokenRNG(seed: 42)
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            #expect(CRC32.checksum(bytes) == referenceCRC32(bytes), "length \(length)")
        }
    }

    @Test func base62Alphabet() {
        #expect(Base62.alphabet.count == 62)
        #expect(Set(Base62.alphabet).count == 62)
        #expect(String(decoding: Base62.alphabet, as: UTF8.self) == String(Self.alphabet))
        for byte in UInt8.min...UInt8.max {
            #expect(Base62.isBase62(byte) == Base62.alphabet.contains(byte), "byte \(byte)")
        }
    }

    @Test func base62EncodeFixedWidth() {
        #expect(Base62.encode(0, width: 6) == "000000")
        #expect(Base62.encode(61, width: 1) == "z")
        #expect(Base62.encode(62, width: 2) == "10")
        #expect(Base62.encode(62 * 62 - 1, width: 3) == "0zz")
        // Every CRC-32 value fits in six base62 digits: 62^6 > 2^32.
        #expect(UInt64(62 * 62 * 62) * UInt64(62 * 62 * 62) > UInt64(UInt32.max))
        var rng = TokenRNG(seed: 7)
        for _ in 0..<2_000 {
            let value = UInt64(UInt32.random(in: 0...UInt32.max, using: &rng))
            let encoded = Base62.encode(value, width: 6)
            #expect(encoded.count == 6)
            #expect(decodeBase62(encoded) == value)
        }
        #expect(decodeBase62(Base62.encode(UInt64(UInt32.max), width: 6)) == UInt64(UInt32.max))
    }

    @Test func base62RandomUsesOnlyTheAlphabet() {
        var rng = TokenRNG(seed: 9)
        let text = Base62.random(count: 10_000, using: &rng)
        #expect(text.utf8.count == 10_000)
        #expect(text.utf8.allSatisfy(Base62.isBase62))
        #expect(Base62.random(count: 0, using: &rng).isEmpty)
    }

    // MARK: Format

    @Test(arguments: SecretToken.Kind.allCases)
    func generatedTokenHasDocumentedFormat(kind: SecretToken.Kind) throws {
        let token = SecretToken.generate(kind)
        let value = token.value
        #expect(token.kind == kind)
        #expect(value.hasPrefix(kind.rawValue))
        #expect(value.utf8.count == kind.rawValue.utf8.count + 32 + 6)
        let rest = value.dropFirst(kind.rawValue.count)
        #expect(rest.utf8.allSatisfy(Base62.isBase62))
        // The last six characters are the base62 CRC-32 of everything before them.
        let body = String(value.dropLast(6))
        let checksum = String(value.suffix(6))
        #expect(decodeBase62(checksum) == UInt64(referenceCRC32(Array(body.utf8))))
        #expect(checksum == Base62.encode(UInt64(CRC32.checksum(Array(body.utf8))), width: 6))
    }

    @Test func prefixes() {
        #expect(SecretToken.Kind.virtualKey.rawValue == "tg_live_")
        #expect(SecretToken.Kind.adminToken.rawValue == "tg_admin_")
        #expect(SecretToken.randomLength == 32)
        #expect(SecretToken.checksumLength == 6)
    }

    @Test func handBuiltTokenParses() throws {
        // Built here from the spec, independent of `generate`.
        let body = "tg_live_" + String(repeating: "A", count: 16) + String(repeating: "z", count: 16)
        let value = body + base62Width6(referenceCRC32(Array(body.utf8)))
        let token = try SecretToken.parse(value, as: .virtualKey)
        #expect(token.value == value)
        #expect(token.kind == .virtualKey)
        #expect(token.displayPrefix == "tg_live_AAAA")
    }

    @Test(arguments: SecretToken.Kind.allCases)
    func generateParseRoundTrip(kind: SecretToken.Kind) throws {
        for _ in 0..<200 {
            let token = SecretToken.generate(kind)
            let parsed = try SecretToken.parse(token.value, as: kind)
            #expect(parsed == token)
            // Substrings parse too.
            let padded = " \(token.value) "
            let substring = padded.dropFirst().dropLast()
            #expect(try SecretToken.parse(substring, as: kind) == token)
        }
    }

    @Test func seededGenerationIsDeterministic() {
        var a = TokenRNG(seed: 1), b = TokenRNG(seed: 1), c = TokenRNG(seed: 2)
        let x = SecretToken.generate(.virtualKey, using: &a)
        #expect(x == SecretToken.generate(.virtualKey, using: &b))
        #expect(x != SecretToken.generate(.virtualKey, using: &c))
    }

    @Test func tokenOfOneKindDoesNotParseAsTheOther() {
        let key = SecretToken.generate(.virtualKey)
        let admin = SecretToken.generate(.adminToken)
        #expect(throws: SecretTokenError.malformed) { try SecretToken.parse(key.value, as: .adminToken) }
        #expect(throws: SecretTokenError.malformed) { try SecretToken.parse(admin.value, as: .virtualKey) }
    }

    @Test(arguments: SecretToken.Kind.allCases)
    func everySingleCharacterSubstitutionIsRejected(kind: SecretToken.Kind) {
        let token = SecretToken.generate(kind)
        let original = Array(token.value)
        let prefixLength = kind.rawValue.count
        let replacements = Self.alphabet + ["_", "-", "+", "/", "=", " ", ".", "\0", "é", "０", "🔑"]
        var tried = 0
        for index in original.indices {
            for replacement in replacements where replacement != original[index] {
                var mutated = original
                mutated[index] = replacement
                let text = String(mutated)
                tried += 1
                do {
                    _ = try SecretToken.parse(text, as: kind)
                    Issue.record("accepted \(text) (position \(index) ← \(replacement))")
                } catch {
                    let inBody = index >= prefixLength
                    let sameLength = text.utf8.count == token.value.utf8.count
                    if inBody, sameLength, replacement.asciiValue.map(Base62.isBase62) == true {
                        #expect(error == .badChecksum, "position \(index) ← \(replacement)")
                    } else {
                        #expect(error == .malformed, "position \(index) ← \(replacement)")
                    }
                }
            }
        }
        #expect(tried > 40 * 62)
    }

    @Test func adjacentTranspositionsAreRejected() {
        let token = SecretToken.generate(.virtualKey)
        let chars = Array(token.value)
        for index in 8..<(chars.count - 1) where chars[index] != chars[index + 1] {
            var mutated = chars
            mutated.swapAt(index, index + 1)
            #expect(throws: SecretTokenError.badChecksum) { try SecretToken.parse(String(mutated), as: .virtualKey) }
        }
    }

    @Test func wrongPrefixLengthOrAlphabetIsMalformed() {
        let value = SecretToken.generate(.virtualKey).value
        let body: String = String(value.dropFirst(8))
        let allButFirst: String = String(body.dropFirst())
        let allButTwo: String = String(body.dropFirst(2))
        let bad: [String] = [
            "",
            "tg_live_",
            String(value.dropLast()),
            value + "0",
            String(value.dropFirst()),
            "TG_LIVE_" + body,
            "tg-live-" + body,
            "tg_test_" + body,
            "xg_live_" + body,
            " " + String(value.dropFirst()),
            String(value.dropLast()) + "\n",
            "tg_live_" + allButFirst + "-",
            // Right UTF-8 length, but a two-byte character replaces two ASCII ones.
            "tg_live_é" + allButTwo,
            String(repeating: "a", count: 46),
        ]
        for text in bad {
            #expect(throws: SecretTokenError.malformed, "\(text)") { try SecretToken.parse(text, as: .virtualKey) }
        }
    }

    @Test func displayPrefix() {
        let key = SecretToken.generate(.virtualKey)
        #expect(SecretToken.displayPrefixLength(for: .virtualKey) == 12)
        #expect(key.displayPrefix.count == 12)
        #expect(key.displayPrefix == String(key.value.prefix(12)))
        #expect(key.displayPrefix.hasPrefix("tg_live_"))
        let admin = SecretToken.generate(.adminToken)
        #expect(admin.displayPrefix == String(admin.value.prefix(13)))
        // The display prefix never reveals more than four random characters.
        #expect(SecretToken.displayPrefixLength(for: .adminToken) == "tg_admin_".count + 4)
    }

    @Test func generatedKeysAreDistinctAndUniform() {
        var seen = Set<String>()
        var bodies = Set<Substring>()
        var counts = [Character: Int]()
        for _ in 0..<1_000 {
            let value = SecretToken.generate(.virtualKey).value
            seen.insert(value)
            let random = value.dropFirst(8).prefix(32)
            bodies.insert(random)
            for char in random { counts[char, default: 0] += 1 }
        }
        #expect(seen.count == 1_000)
        #expect(bodies.count == 1_000)
        // 32,000 draws over 62 symbols: ~516 each, σ ≈ 22. Every symbol appears and none is far off.
        #expect(counts.count == 62)
        for (char, count) in counts { #expect((316...716).contains(count), "\(char): \(count)") }
    }

    // MARK: SecretHasher

    static func pepper(_ byte: UInt8, count: Int = 32) -> SymmetricKey {
        SymmetricKey(data: [UInt8](repeating: byte, count: count))
    }

    @Test func hasherIsDeterministicAndPepperDependent() throws {
        let a = try SecretHasher(pepper: Self.pepper(1))
        let a2 = try SecretHasher(pepper: Self.pepper(1))
        let b = try SecretHasher(pepper: Self.pepper(2))
        let secret = SecretToken.generate(.virtualKey).value
        #expect(a.hash(secret).count == 32)
        #expect(a.hash(secret) == a.hash(secret))
        #expect(a.hash(secret) == a2.hash(secret))
        #expect(a.hash(secret) != b.hash(secret))
        #expect(a.hash(secret) != a.hash(secret + "x"))
        #expect(a.hash("") != b.hash(""))
    }

    @Test func hasherIsHMACSHA256() throws {
        // RFC 4231 test case 6 (a 131-byte key).
        let hasher = try SecretHasher(pepper: Self.pepper(0xAA, count: 131))
        let mac = hasher.hash("Test Using Larger Than Block-Size Key - Hash Key First")
        #expect(hex(mac) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test(arguments: [0, 1, 16, 31])
    func rejectsShortPepper(bytes: Int) {
        #expect(throws: SecretHasherError.pepperTooShort(bytes: bytes)) {
            try SecretHasher(pepper: SymmetricKey(data: [UInt8](repeating: 7, count: bytes)))
        }
    }

    @Test func loadsPepperFromEnvironment() throws {
        let bytes = (0..<32).map { UInt8($0 * 7 & 0xFF) }
        let text = Data(bytes).base64EncodedString()
        let loaded = try SecretHasher.load(environment: ["TOLLGATE_KEY_PEPPER": text])
        let direct = try SecretHasher(pepper: SymmetricKey(data: bytes))
        #expect(loaded.hash("k") == direct.hash("k"))
        let padded = try SecretHasher.load(environment: ["TOLLGATE_KEY_PEPPER": "  \(text)\n"])
        #expect(padded.hash("k") == direct.hash("k"))
        let generated = SecretHasher.generatePepper()
        #expect(Data(base64Encoded: generated)?.count == 32)
        #expect(generated != SecretHasher.generatePepper())
        _ = try SecretHasher.load(environment: ["TOLLGATE_KEY_PEPPER": generated])
    }

    @Test func loadErrorsNeverContainThePepper() {
        let shortPepper = Data("short-but-secret-pepper".utf8).base64EncodedString()  // 23 bytes
        let cases: [(String?, SecretHasherError)] = [
            (nil, .missing),
            ("", .missing),
            ("not base64 at all: s3cr3t-pepper!", .notBase64),
            ("s3cr3tPepperValue%%%", .notBase64),
            (shortPepper, .pepperTooShort(bytes: 23)),
        ]
        for (value, expected) in cases {
            var environment = ["OTHER": "x"]
            if let value { environment["TOLLGATE_KEY_PEPPER"] = value }
            do {
                _ = try SecretHasher.load(environment: environment)
                Issue.record("accepted \(value ?? "nil")")
            } catch {
                #expect(error == expected)
                guard let value, !value.isEmpty else { continue }
                for rendered in [String(describing: error), String(reflecting: error), "\(error)", error.description] {
                    #expect(!rendered.contains(value), "\(rendered)")
                    #expect(!rendered.contains("s3cr3t"), "\(rendered)")
                    #expect(!rendered.contains("secret-pepper"), "\(rendered)")
                }
            }
        }
    }
}

// MARK: - Helpers

/// Bit-at-a-time CRC-32 (reflected, polynomial 0xEDB88320), independent of the table-driven one.
private func referenceCRC32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

private func decodeBase62(_ text: String) -> UInt64 {
    let alphabet = SecretTokenTests.alphabet
    return text.reduce(UInt64(0)) { $0 * 62 + UInt64(alphabet.firstIndex(of: $1)!) }
}

private func base62Width6(_ value: UInt32) -> String {
    var digits: [Character] = []
    var rest = UInt64(value)
    for _ in 0..<6 { digits.append(SecretTokenTests.alphabet[Int(rest % 62)]); rest /= 62 }
    return String(digits.reversed())
}

private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

private struct TokenRNG: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
