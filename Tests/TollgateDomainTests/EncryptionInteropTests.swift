import Crypto
import Foundation
import Testing
@testable import TollgateDomain

/// Interop with OpenSSL through Python's `cryptography` (AESGCM is backed by OpenSSL). The Python
/// side implements the envelope format and associated data independently from the documentation
/// in Envelope.swift, so these tests check the spec, not just Swift against itself.
/// Needs `python3` with `cryptography` on PATH; the tests fail (not skip) without it.
extension EncryptionTests {
    @Suite struct OpenSSLInterop {
        typealias F = EncryptionFixtures

        static let script = #"""
import os, struct, sys, uuid
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def aad(fmt, version, purpose, tenant, record):
    fields = [b"tollgate", bytes([fmt]), struct.pack(">I", version), purpose.encode("utf-8"),
              uuid.UUID(tenant).bytes, uuid.UUID(record).bytes]
    return b"".join(struct.pack(">I", len(f)) + f for f in fields)

mode, args = sys.argv[1], sys.argv[2:]
if mode == "aad":
    version, purpose, tenant, record = args
    print(aad(1, int(version), purpose, tenant, record).hex())
elif mode == "open":
    key, envelope, purpose, tenant, record = args
    envelope = bytes.fromhex(envelope)
    if envelope[0] != 1:
        sys.exit("unknown format")
    version = struct.unpack(">I", envelope[1:5])[0]
    nonce, body = envelope[5:17], envelope[17:]
    plaintext = AESGCM(bytes.fromhex(key)).decrypt(nonce, body, aad(1, version, purpose, tenant, record))
    print(plaintext.hex())
elif mode == "seal":
    key, version, purpose, tenant, record, plaintext = args[:6]
    nonce = bytes.fromhex(args[6]) if len(args) > 6 else os.urandom(12)
    version = int(version)
    body = AESGCM(bytes.fromhex(key)).encrypt(nonce, bytes.fromhex(plaintext), aad(1, version, purpose, tenant, record))
    print((bytes([1]) + struct.pack(">I", version) + nonce + body).hex())
else:
    sys.exit("unknown mode " + mode)
"""#

        struct PythonResult {
            var status: Int32
            var stdout: String
            var stderr: String
        }

        static func python(_ arguments: [String]) throws -> PythonResult {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", script] + arguments
            let out = Pipe(), err = Pipe()
            process.standardOutput = out
            process.standardError = err
            process.standardInput = FileHandle.nullDevice
            try process.run()
            // Read before waiting so a full pipe cannot block the child.
            let stdout = out.fileHandleForReading.readDataToEndOfFile()
            let stderr = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return PythonResult(
                status: process.terminationStatus,
                stdout: String(decoding: stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines),
                stderr: String(decoding: stderr, as: UTF8.self)
            )
        }

        static func contextArguments(_ context: EncryptionContext) -> [String] {
            [context.purpose.rawValue, context.tenantID.uuidString.lowercased(), context.recordID.uuidString.lowercased()]
        }

        @Test func pythonComputesTheSameAssociatedData() throws {
            for purpose in EncryptionPurpose.allCases {
                let context = F.context(purpose, tenant: F.tenantB, record: UUID())
                let result = try Self.python(["aad", "305419896"] + Self.contextArguments(context))
                try #require(result.status == 0, "python failed: \(result.stderr)")
                #expect(result.stdout == F.hex(Envelope.associatedData(keyVersion: 305_419_896, context: context)))
            }
        }

        @Test func tollgateCiphertextDecryptsWithOpenSSL() throws {
            let dataKey = MasterKeyring.generateDataKey()
            let credentialID = UUID()
            let secret = "sk-mistral-Ünïcode-🔑-\(UUID().uuidString)"
            let sealed = try CredentialCipher(dataKey: dataKey, tenantID: F.tenantA).encrypt(secret, credentialID: credentialID)
            let context = F.context(.credentialSecret, tenant: F.tenantA, record: credentialID)

            let result = try Self.python(["open", F.hex(F.keyBytes(dataKey)), F.hex(sealed)] + Self.contextArguments(context))
            try #require(result.status == 0, "python failed: \(result.stderr)")
            #expect(String(decoding: F.bytes(hex: result.stdout), as: UTF8.self) == secret)

            // OpenSSL enforces the binding too: another record id is rejected.
            let wrongRecord = F.context(.credentialSecret, tenant: F.tenantA, record: F.record2)
            let rejected = try Self.python(["open", F.hex(F.keyBytes(dataKey)), F.hex(sealed)] + Self.contextArguments(wrongRecord))
            #expect(rejected.status != 0)
            #expect(rejected.stderr.contains("InvalidTag"))
        }

        @Test func wrappedDataKeyUnwrapsWithOpenSSL() throws {
            let masterKey = F.randomKey()
            let ring = try MasterKeyring(keys: [4: masterKey], primary: 4)
            let dataKey = MasterKeyring.generateDataKey()
            let wrapped = try ring.wrapDataKey(dataKey, tenantID: F.tenantB)
            let context = EncryptionContext(purpose: .tenantDataKey, tenantID: F.tenantB, recordID: F.tenantB)
            let result = try Self.python(["open", F.hex(F.keyBytes(masterKey)), F.hex(wrapped)] + Self.contextArguments(context))
            try #require(result.status == 0, "python failed: \(result.stderr)")
            #expect(result.stdout == F.hex(F.keyBytes(dataKey)))
        }

        @Test func openSSLCiphertextOpensInTollgate() throws {
            let dataKey = MasterKeyring.generateDataKey()
            let credentialID = UUID()
            let secret = "sk-from-python-\(UUID().uuidString)-é"
            let context = F.context(.credentialSecret, tenant: F.tenantB, record: credentialID)
            let result = try Self.python(
                ["seal", F.hex(F.keyBytes(dataKey)), "\(CredentialCipher.dataKeyVersion)"]
                    + Self.contextArguments(context) + [F.hex(secret.utf8)])
            try #require(result.status == 0, "python failed: \(result.stderr)")
            let sealed = F.bytes(hex: result.stdout)
            #expect(sealed.count == secret.utf8.count + Envelope.overhead)

            let cipher = CredentialCipher(dataKey: dataKey, tenantID: F.tenantB)
            #expect(try cipher.decrypt(sealed, credentialID: credentialID) == secret)
            #expect(throws: EnvelopeError.authenticationFailed) { try cipher.decrypt(sealed, credentialID: F.record1) }

            var tampered = sealed
            tampered[Envelope.headerSize + Envelope.nonceSize] ^= 0x80
            #expect(throws: EnvelopeError.authenticationFailed) { try cipher.decrypt(tampered, credentialID: credentialID) }
        }

        @Test func openSSLWrappedDataKeyUnwrapsInTollgate() throws {
            let masterKey = F.randomKey()
            let dataKey = MasterKeyring.generateDataKey()
            let context = EncryptionContext(purpose: .tenantDataKey, tenantID: F.tenantA, recordID: F.tenantA)
            let result = try Self.python(["seal", F.hex(F.keyBytes(masterKey)), "3"]
                + Self.contextArguments(context) + [F.hex(F.keyBytes(dataKey))])
            try #require(result.status == 0, "python failed: \(result.stderr)")
            let ring = try MasterKeyring(keys: [3: masterKey], primary: 3)
            let unwrapped = try ring.unwrapDataKey(F.bytes(hex: result.stdout), tenantID: F.tenantA)
            #expect(F.keyBytes(unwrapped) == F.keyBytes(dataKey))
        }
    }
}
