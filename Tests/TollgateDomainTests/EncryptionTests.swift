import Crypto
import Foundation
import Testing
@testable import TollgateDomain

/// Root suite for the credential-encryption layer; the nested suites live in Encryption*.swift.
/// Run with `swift test --filter EncryptionTests`.
@Suite struct EncryptionTests {}

// MARK: - Helpers shared by the Encryption* test files

enum EncryptionFixtures {
    static let tenantA = UUID(uuidString: "6F1A2B3C-0000-4000-8000-00000000000A")!
    static let tenantB = UUID(uuidString: "6F1A2B3C-0000-4000-8000-00000000000B")!
    static let record1 = UUID(uuidString: "6F1A2B3C-0000-4000-8000-000000000001")!
    static let record2 = UUID(uuidString: "6F1A2B3C-0000-4000-8000-000000000002")!

    static func context(
        _ purpose: EncryptionPurpose = .credentialSecret,
        tenant: UUID = tenantA,
        record: UUID = record1
    ) -> EncryptionContext {
        EncryptionContext(purpose: purpose, tenantID: tenant, recordID: record)
    }

    static func randomKey() -> SymmetricKey { SymmetricKey(size: .bits256) }

    static func keyBytes(_ key: SymmetricKey) -> [UInt8] { key.withUnsafeBytes { Array($0) } }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func bytes(hex: String) -> [UInt8] {
        let chars = Array(hex.utf8)
        precondition(chars.count % 2 == 0, "odd hex length")
        return stride(from: 0, to: chars.count, by: 2).map { UInt8(String(decoding: chars[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
    }
}

// MARK: - Envelope format

extension EncryptionTests {
    @Suite struct EnvelopeFormat {
        typealias F = EncryptionFixtures

        @Test func roundTrip() throws {
            let key = F.randomKey()
            for plaintext in [[], Array("sk-abc".utf8), (0..<5000).map { UInt8($0 & 0xFF) }] as [[UInt8]] {
                let sealed = try Envelope.seal(plaintext, key: key, keyVersion: 42, context: F.context())
                #expect(sealed.count == plaintext.count + Envelope.overhead)
                #expect(sealed.first == 0x01)
                #expect(Array(sealed[1..<5]) == [0, 0, 0, 42])
                #expect(try Envelope.keyVersion(of: sealed) == 42)
                #expect(Array(try Envelope.open(sealed, key: key, context: F.context())) == plaintext)
            }
        }

        @Test func nonceIsFreshPerSeal() throws {
            let key = F.randomKey()
            let a = try Envelope.seal(Array("same".utf8), key: key, keyVersion: 1, context: F.context())
            let b = try Envelope.seal(Array("same".utf8), key: key, keyVersion: 1, context: F.context())
            #expect(a != b)
            #expect(a[5..<17] != b[5..<17])
        }

        @Test func everyFlippedBitFailsToOpen() throws {
            let key = F.randomKey()
            let sealed = Array(try Envelope.seal(Array("sk-mistral-secret".utf8), key: key, keyVersion: 3, context: F.context()))
            for position in sealed.indices {
                for bit in 0..<8 {
                    var tampered = sealed
                    tampered[position] ^= UInt8(1 << bit)
                    let expected: EnvelopeError = position == 0
                        ? .unsupportedFormat(tampered[0]) : .authenticationFailed
                    #expect(throws: expected, "byte \(position) bit \(bit)") {
                        try Envelope.open(tampered, key: key, context: F.context())
                    }
                }
            }
        }

        @Test func everyReplacedByteFailsToOpen() throws {
            let key = F.randomKey()
            let sealed = Array(try Envelope.seal(Array("sk-mistral-secret".utf8), key: key, keyVersion: 3, context: F.context()))
            for position in sealed.indices {
                var tampered = sealed
                tampered[position] = ~tampered[position]
                #expect(throws: (any Error).self, "byte \(position)") {
                    try Envelope.open(tampered, key: key, context: F.context())
                }
            }
        }

        @Test func truncatedOrExtendedInputFails() throws {
            let key = F.randomKey()
            let sealed = Array(try Envelope.seal(Array("sk-mistral-secret".utf8), key: key, keyVersion: 3, context: F.context()))
            for length in 0..<sealed.count {
                let prefix = Array(sealed.prefix(length))
                let expected: EnvelopeError = length < Envelope.overhead
                    ? .truncated(byteCount: length) : .authenticationFailed
                #expect(throws: expected, "length \(length)") {
                    try Envelope.open(prefix, key: key, context: F.context())
                }
            }
            #expect(throws: EnvelopeError.authenticationFailed) {
                try Envelope.open(sealed + [0], key: key, context: F.context())
            }
            #expect(throws: EnvelopeError.truncated(byteCount: 0)) { try Envelope.keyVersion(of: [UInt8]()) }
            #expect(throws: EnvelopeError.truncated(byteCount: 4)) { try Envelope.keyVersion(of: sealed.prefix(4)) }
        }

        @Test func unknownFormatIsRejected() throws {
            var sealed = Array(try Envelope.seal([1, 2, 3], key: F.randomKey(), keyVersion: 1, context: F.context()))
            sealed[0] = 0x02
            #expect(throws: EnvelopeError.unsupportedFormat(2)) { try Envelope.keyVersion(of: sealed) }
            #expect(EnvelopeError.unsupportedFormat(2).description.contains("unknown format byte 2"))
        }

        @Test func wrongKeyOrContextFails() throws {
            let key = F.randomKey()
            let sealed = try Envelope.seal(Array("secret".utf8), key: key, keyVersion: 1, context: F.context())
            let wrongContexts = [
                F.context(.tenantDataKey),
                F.context(tenant: F.tenantB),
                F.context(record: F.record2),
                F.context(tenant: F.record1, record: F.tenantA),
            ]
            for context in wrongContexts {
                #expect(throws: EnvelopeError.authenticationFailed) { try Envelope.open(sealed, key: key, context: context) }
            }
            #expect(throws: EnvelopeError.authenticationFailed) { try Envelope.open(sealed, key: F.randomKey(), context: F.context()) }
        }

        @Test func onlyAES256KeysAreAccepted() throws {
            let short = SymmetricKey(size: .bits128)
            #expect(throws: EnvelopeError.invalidKeySize(bitCount: 128)) {
                try Envelope.seal([1], key: short, keyVersion: 1, context: F.context())
            }
            #expect(EnvelopeError.invalidKeySize(bitCount: 128).description == "encryption key is 16 bytes; AES-256 needs 32 bytes")
        }

        @Test func authenticationFailureCarriesNoDetail() {
            #expect(EnvelopeError.authenticationFailed.description
                == "encrypted value failed authentication (wrong key, wrong tenant/record/purpose, or tampered data)")
        }

        /// Freezes the associated-data layout; changing it would make every stored value unreadable.
        @Test func associatedDataLayoutIsStable() {
            let aad = Envelope.associatedData(keyVersion: 7, context: F.context(record: F.record2))
            let expected = "00000008" + F.hex("tollgate".utf8)
                + "00000001" + "01"
                + "00000004" + "00000007"
                + "00000011" + F.hex("credential-secret".utf8)
                + "00000010" + "6f1a2b3c00004000800000000000000a"
                + "00000010" + "6f1a2b3c000040008000000000000002"
            #expect(F.hex(aad) == expected)
            #expect(EncryptionPurpose.tenantDataKey.rawValue == "tenant-data-key")
            #expect(EncryptionPurpose.credentialSecret.rawValue == "credential-secret")
        }

        /// An envelope produced once by Python `cryptography` (OpenSSL) with a fixed key and nonce;
        /// it must keep opening in every future build.
        @Test func knownAnswerEnvelopeOpens() throws {
            let key = SymmetricKey(data: F.bytes(hex: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"))
            let sealed = F.bytes(hex: "0100000007a0a1a2a3a4a5a6a7a8a9aaab9573515920b87692090be8a46957a1b003db3c623ce8e701b42ccd3241e75b6f38dab0e0")
            let context = F.context(tenant: F.record1, record: F.record2)
            #expect(try Envelope.keyVersion(of: sealed) == 7)
            #expect(String(decoding: try Envelope.open(sealed, key: key, context: context), as: UTF8.self) == "sk-test-known-answer")
        }
    }
}
