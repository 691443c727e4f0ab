// Encryption envelope: the on-disk format of everything Tollgate encrypts (wrapped tenant data keys,
// credential secrets). Values are stored as Postgres `bytea`.
//
// Layout (version 1), all integers big-endian:
//
//     offset  size  field
//     0       1     format byte, 0x01 = AES-256-GCM
//     1       4     key version (UInt32): which master key / data key sealed this value
//     5       12    nonce (random per seal)
//     17      n     ciphertext (same length as the plaintext)
//     17+n    16    GCM authentication tag
//
// The bytes after the header are exactly what OpenSSL's / Python `cryptography`'s AESGCM produce:
// `nonce` followed by `ciphertext || tag`.
//
// Associated data (authenticated, not stored): a sequence of fields, each written as a UInt32
// big-endian length followed by the field's bytes, in this order:
//
//     "tollgate" (UTF-8)            fixed domain label: keys are never valid for another system's data
//     format byte (1 byte)          the header cannot be edited: changing the format byte or key
//     key version (4 bytes, BE)     version makes the tag check fail
//     purpose raw value (UTF-8)     e.g. "credential-secret"
//     tenant id (16 bytes, RFC 4122 byte order)
//     record id (16 bytes, RFC 4122 byte order)
//
// Why bind tenant, record and purpose: GCM only proves that a ciphertext was made with the key; it
// says nothing about *where* it belongs. Without the binding, someone who can write to the database
// (or a bug) could copy tenant A's credential ciphertext into tenant B's row, or swap two credentials
// of one tenant, or present a wrapped data key as a credential, and the value would decrypt without
// complaint. With the binding, a ciphertext opens only in the exact row (tenant + record) and role
// (purpose) it was sealed for; anything else fails with `EnvelopeError.authenticationFailed`.
// Length prefixes make the encoding unambiguous (no two different field lists give the same bytes).

import Crypto
import Foundation

/// What a sealed value is used for. The raw values are part of the associated data of every
/// envelope: never change them.
public enum EncryptionPurpose: String, Sendable, Hashable, CaseIterable {
    /// A tenant's data key, wrapped by a master key. Record id = tenant id.
    case tenantDataKey = "tenant-data-key"
    /// A provider credential (API key) of a tenant, sealed with the tenant's data key.
    /// Record id = credential id.
    case credentialSecret = "credential-secret"
    /// A stored admin API response replayed for an `Idempotency-Key`, when it carries a one-time
    /// secret (a minted key or token). Sealed with the master key. Record id = admin token id.
    case idempotentResponse = "idempotent-response"
}

/// Where a sealed value belongs. Opening with any other context fails.
public struct EncryptionContext: Sendable, Hashable {
    public var purpose: EncryptionPurpose
    public var tenantID: UUID
    public var recordID: UUID

    public init(purpose: EncryptionPurpose, tenantID: UUID, recordID: UUID) {
        self.purpose = purpose
        self.tenantID = tenantID
        self.recordID = recordID
    }
}

public enum EnvelopeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Shorter than header + tag: not an envelope, or cut off.
    case truncated(byteCount: Int)
    /// The first byte is not a known format.
    case unsupportedFormat(UInt8)
    /// Wrong key, wrong context, or the bytes were altered. Deliberately carries no detail.
    case authenticationFailed
    /// Envelopes use AES-256 only.
    case invalidKeySize(bitCount: Int)

    public var description: String {
        switch self {
        case .truncated(let count):
            return "encrypted value is truncated: \(count) bytes, an envelope has at least \(Envelope.overhead)"
        case .unsupportedFormat(let byte):
            return "encrypted value has unknown format byte \(byte) (supported: \(Envelope.formatAES256GCM))"
        case .authenticationFailed:
            return "encrypted value failed authentication (wrong key, wrong tenant/record/purpose, or tampered data)"
        case .invalidKeySize(let bits):
            return "encryption key is \(bits / 8) bytes; AES-256 needs 32 bytes"
        }
    }
}

/// Seals and opens envelopes (see the format description at the top of this file).
public enum Envelope {
    public static let formatAES256GCM: UInt8 = 0x01
    public static let headerSize = 1 + 4
    public static let nonceSize = 12
    public static let tagSize = 16
    /// Bytes an envelope adds to the plaintext (header + nonce + tag).
    public static let overhead = headerSize + nonceSize + tagSize
    static let label = Array("tollgate".utf8)

    public static func seal(
        _ plaintext: some DataProtocol,
        key: SymmetricKey,
        keyVersion: UInt32,
        context: EncryptionContext
    ) throws -> Data {
        try checkKey(key)
        let format = formatAES256GCM
        let aad = associatedData(format: format, keyVersion: keyVersion, context: context)
        let box = try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(), authenticating: aad)
        var out = Data(capacity: overhead + plaintext.count)
        out.append(format)
        appendUInt32(keyVersion, to: &out)
        out.append(contentsOf: box.nonce)
        out.append(box.ciphertext)
        out.append(box.tag)
        return out
    }

    public static func open(
        _ sealed: some DataProtocol,
        key: SymmetricKey,
        context: EncryptionContext
    ) throws -> Data {
        try checkKey(key)
        let bytes = Array(sealed)
        let (format, keyVersion) = try header(of: bytes)
        let aad = associatedData(format: format, keyVersion: keyVersion, context: context)
        let nonceEnd = headerSize + nonceSize
        let tagStart = bytes.count - tagSize
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: bytes[headerSize..<nonceEnd]),
                ciphertext: bytes[nonceEnd..<tagStart],
                tag: bytes[tagStart...]
            )
            return try AES.GCM.open(box, using: key, authenticating: aad)
        } catch {
            throw EnvelopeError.authenticationFailed
        }
    }

    /// The key version in the header, to pick the key for `open`. Not authenticated by itself:
    /// `open` fails if it was altered.
    public static func keyVersion(of sealed: some DataProtocol) throws -> UInt32 {
        try header(of: Array(sealed)).keyVersion
    }

    /// The associated data bound into an envelope (public for interop tests and other implementations).
    public static func associatedData(
        format: UInt8 = formatAES256GCM,
        keyVersion: UInt32,
        context: EncryptionContext
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 * 4 + label.count + 1 + 4 + 32 + 32)
        func field(_ bytes: some Collection<UInt8>) {
            appendUInt32(UInt32(bytes.count), to: &out)
            out.append(contentsOf: bytes)
        }
        field(label)
        field([format])
        field(bigEndianBytes(keyVersion))
        field(Array(context.purpose.rawValue.utf8))
        field(uuidBytes(context.tenantID))
        field(uuidBytes(context.recordID))
        return out
    }

    // MARK: - Helpers

    private static func header(of bytes: [UInt8]) throws -> (format: UInt8, keyVersion: UInt32) {
        guard let format = bytes.first else { throw EnvelopeError.truncated(byteCount: 0) }
        guard format == formatAES256GCM else { throw EnvelopeError.unsupportedFormat(format) }
        guard bytes.count >= overhead else { throw EnvelopeError.truncated(byteCount: bytes.count) }
        let version = bytes[1..<5].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return (format, version)
    }

    private static func checkKey(_ key: SymmetricKey) throws {
        guard key.bitCount == 256 else { throw EnvelopeError.invalidKeySize(bitCount: key.bitCount) }
    }

    private static func bigEndianBytes(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    private static func appendUInt32(_ value: UInt32, to data: inout Data) {
        data.append(contentsOf: bigEndianBytes(value))
    }

    private static func appendUInt32(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: bigEndianBytes(value))
    }

    private static func uuidBytes(_ id: UUID) -> [UInt8] {
        withUnsafeBytes(of: id.uuid) { Array($0) }
    }
}
