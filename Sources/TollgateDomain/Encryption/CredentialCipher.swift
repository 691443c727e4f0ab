import Crypto
import Foundation

public enum CredentialCipherError: Error, Sendable, Equatable, CustomStringConvertible {
    case unsupportedDataKeyVersion(UInt32)
    case notUTF8

    public var description: String {
        switch self {
        case .unsupportedDataKeyVersion(let version):
            return "credential is sealed with data key version \(version); this build supports version \(CredentialCipher.dataKeyVersion)"
        case .notUTF8:
            return "decrypted credential is not valid UTF-8"
        }
    }
}

/// Encrypts and decrypts a tenant's credential secrets with the tenant's (unwrapped) data key.
/// Each ciphertext is bound to the tenant and the credential id (see `Envelope`).
public struct CredentialCipher: Sendable {
    /// Version written into the envelope header. Tenants have a single data key for now.
    public static let dataKeyVersion: UInt32 = 1

    public let tenantID: UUID
    private let dataKey: SymmetricKey

    public init(dataKey: SymmetricKey, tenantID: UUID) {
        self.dataKey = dataKey
        self.tenantID = tenantID
    }

    public func encrypt(_ secret: String, credentialID: UUID) throws -> Data {
        try Envelope.seal(Array(secret.utf8), key: dataKey, keyVersion: Self.dataKeyVersion,
                          context: context(credentialID))
    }

    public func decrypt(_ sealed: some DataProtocol, credentialID: UUID) throws -> String {
        let version = try Envelope.keyVersion(of: sealed)
        guard version == Self.dataKeyVersion else {
            throw CredentialCipherError.unsupportedDataKeyVersion(version)
        }
        let plaintext = try Envelope.open(sealed, key: dataKey, context: context(credentialID))
        guard let secret = String(validating: plaintext, as: UTF8.self) else {
            throw CredentialCipherError.notUTF8
        }
        return secret
    }

    private func context(_ credentialID: UUID) -> EncryptionContext {
        EncryptionContext(purpose: .credentialSecret, tenantID: tenantID, recordID: credentialID)
    }
}
