import Crypto
import Foundation
import Testing
@testable import TollgateDomain

extension EncryptionTests {
    @Suite struct DataKeysAndCredentials {
        typealias F = EncryptionFixtures

        @Test func wrapAndUnwrapDataKey() throws {
            let ring = try MasterKeyring(keys: [1: F.randomKey()], primary: 1)
            let dataKey = MasterKeyring.generateDataKey()
            #expect(dataKey.bitCount == 256)
            let wrapped = try ring.wrapDataKey(dataKey, tenantID: F.tenantA)
            #expect(wrapped.count == 32 + Envelope.overhead)
            #expect(try Envelope.keyVersion(of: wrapped) == 1)
            let unwrapped = try ring.unwrapDataKey(wrapped, tenantID: F.tenantA)
            #expect(F.keyBytes(unwrapped) == F.keyBytes(dataKey))
            #expect(F.keyBytes(MasterKeyring.generateDataKey()) != F.keyBytes(dataKey))
        }

        @Test func wrappedDataKeyDoesNotOpenForAnotherTenant() throws {
            let ring = try MasterKeyring(keys: [1: F.randomKey()], primary: 1)
            let wrapped = try ring.wrapDataKey(MasterKeyring.generateDataKey(), tenantID: F.tenantA)
            #expect(throws: EnvelopeError.authenticationFailed) { try ring.unwrapDataKey(wrapped, tenantID: F.tenantB) }
        }

        @Test func credentialRoundTrip() throws {
            let cipher = CredentialCipher(dataKey: MasterKeyring.generateDataKey(), tenantID: F.tenantA)
            for secret in ["sk-7Hq2xZ", "", "clé-🔑-ünïcødé"] {
                let sealed = try cipher.encrypt(secret, credentialID: F.record1)
                #expect(try Envelope.keyVersion(of: sealed) == CredentialCipher.dataKeyVersion)
                #expect(try cipher.decrypt(sealed, credentialID: F.record1) == secret)
            }
        }

        @Test func credentialCiphertextIsBoundToRecordTenantAndKey() throws {
            let dataKey = MasterKeyring.generateDataKey()
            let cipherA = CredentialCipher(dataKey: dataKey, tenantID: F.tenantA)
            let sealed = try cipherA.encrypt("sk-secret", credentialID: F.record1)
            // Another record of the same tenant (swapped rows).
            #expect(throws: EnvelopeError.authenticationFailed) { try cipherA.decrypt(sealed, credentialID: F.record2) }
            // Another tenant, even with the same data key.
            let cipherB = CredentialCipher(dataKey: dataKey, tenantID: F.tenantB)
            #expect(throws: EnvelopeError.authenticationFailed) { try cipherB.decrypt(sealed, credentialID: F.record1) }
            // Another tenant's data key.
            let otherKey = CredentialCipher(dataKey: MasterKeyring.generateDataKey(), tenantID: F.tenantA)
            #expect(throws: EnvelopeError.authenticationFailed) { try otherKey.decrypt(sealed, credentialID: F.record1) }
        }

        @Test func purposesDoNotMix() throws {
            // A wrapped data key presented as a credential (same tenant, record = tenant id) fails, and back.
            let masterKey = F.randomKey()
            let ring = try MasterKeyring(keys: [1: masterKey], primary: 1)
            let wrapped = try ring.wrapDataKey(MasterKeyring.generateDataKey(), tenantID: F.tenantA)
            let asCredential = CredentialCipher(dataKey: masterKey, tenantID: F.tenantA)
            #expect(throws: EnvelopeError.authenticationFailed) { try asCredential.decrypt(wrapped, credentialID: F.tenantA) }

            let credential = try asCredential.encrypt(String(repeating: "k", count: 32), credentialID: F.tenantA)
            #expect(throws: EnvelopeError.authenticationFailed) { try ring.unwrapDataKey(credential, tenantID: F.tenantA) }
        }

        @Test func credentialWithOtherDataKeyVersionIsRejectedClearly() throws {
            let dataKey = MasterKeyring.generateDataKey()
            let sealed = try Envelope.seal(Array("x".utf8), key: dataKey, keyVersion: 2,
                                           context: F.context(tenant: F.tenantA, record: F.record1))
            let cipher = CredentialCipher(dataKey: dataKey, tenantID: F.tenantA)
            #expect(throws: CredentialCipherError.unsupportedDataKeyVersion(2)) { try cipher.decrypt(sealed, credentialID: F.record1) }
        }
    }

    @Suite struct Rotation {
        typealias F = EncryptionFixtures

        @Test func rewrapMovesToNewPrimaryAndOldKeyCanBeRetired() throws {
            let v1 = F.randomKey(), v2 = F.randomKey()
            let ringV1 = try MasterKeyring(keys: [1: v1], primary: 1)
            let dataKey = MasterKeyring.generateDataKey()
            let wrappedV1 = try ringV1.wrapDataKey(dataKey, tenantID: F.tenantA)
            let credential = try CredentialCipher(dataKey: dataKey, tenantID: F.tenantA).encrypt("sk-rotate-me", credentialID: F.record1)

            // Add v2 as primary; v1 still opens old values.
            let ringBoth = try MasterKeyring(keys: [1: v1, 2: v2], primary: 2)
            #expect(F.keyBytes(try ringBoth.unwrapDataKey(wrappedV1, tenantID: F.tenantA)) == F.keyBytes(dataKey))
            let (wrappedV2, changed) = try ringBoth.rewrap(wrappedV1, tenantID: F.tenantA)
            #expect(changed)
            #expect(try Envelope.keyVersion(of: wrappedV2) == 2)
            #expect(F.keyBytes(try ringBoth.unwrapDataKey(wrappedV2, tenantID: F.tenantA)) == F.keyBytes(dataKey))

            // Rewrapping again is a no-op.
            let again = try ringBoth.rewrap(wrappedV2, tenantID: F.tenantA)
            #expect(!again.changed)
            #expect(again.wrapped == wrappedV2)

            // Retire v1: the rewrapped value opens, the old one names the missing version.
            let ringV2 = try MasterKeyring(keys: [2: v2], primary: 2)
            let unwrapped = try ringV2.unwrapDataKey(wrappedV2, tenantID: F.tenantA)
            #expect(F.keyBytes(unwrapped) == F.keyBytes(dataKey))
            #expect(try CredentialCipher(dataKey: unwrapped, tenantID: F.tenantA).decrypt(credential, credentialID: F.record1) == "sk-rotate-me")
            #expect(throws: MasterKeyringError.dataKeyVersionNotInKeyring(1)) {
                try ringV2.unwrapDataKey(wrappedV1, tenantID: F.tenantA)
            }
            #expect(throws: MasterKeyringError.dataKeyVersionNotInKeyring(1)) {
                try ringV2.rewrap(wrappedV1, tenantID: F.tenantA)
            }
            do {
                _ = try ringV2.unwrapDataKey(wrappedV1, tenantID: F.tenantA)
            } catch {
                #expect("\(error)" == "data key is wrapped with master key version 1, which is not in the keyring")
            }
        }

        @Test func rewrapVerifiesEvenWhenAlreadyPrimary() throws {
            let ring = try MasterKeyring(keys: [1: F.randomKey()], primary: 1)
            var wrapped = try ring.wrapDataKey(MasterKeyring.generateDataKey(), tenantID: F.tenantA)
            wrapped[wrapped.count - 1] ^= 1
            #expect(throws: EnvelopeError.authenticationFailed) { try ring.rewrap(wrapped, tenantID: F.tenantA) }
            #expect(throws: EnvelopeError.authenticationFailed) {
                try ring.rewrap(try ring.wrapDataKey(MasterKeyring.generateDataKey(), tenantID: F.tenantA), tenantID: F.tenantB)
            }
        }

        @Test func wrappingUsesThePrimaryNotTheHighestVersion() throws {
            let ring = try MasterKeyring(keys: [1: F.randomKey(), 2: F.randomKey()], primary: 1)
            let wrapped = try ring.wrapDataKey(MasterKeyring.generateDataKey(), tenantID: F.tenantA)
            #expect(try Envelope.keyVersion(of: wrapped) == 1)
        }
    }
}
