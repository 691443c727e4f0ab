import Crypto
import Foundation

/// Errors from building or using a `MasterKeyring`. Descriptions name variables, entry indexes and
/// versions only; they never contain key bytes or base64 text.
public enum MasterKeyringError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum EntryProblem: String, Sendable, Equatable {
        case missingSeparator = "expected <version>:<base64 key>"
        case invalidVersion = "the version is not a positive integer"
        case invalidBase64 = "the key is not valid base64"
    }

    /// Neither `TOLLGATE_MASTER_KEYS` nor `TOLLGATE_MASTER_KEYS_FILE` is set.
    case missing
    /// Both `TOLLGATE_MASTER_KEYS` and `TOLLGATE_MASTER_KEYS_FILE` are set.
    case conflictingSources
    /// The keys file could not be read.
    case unreadableFile(path: String)
    /// The source is set but contains no entries.
    case noEntries(source: String)
    /// Entry number `index` (1-based, blank lines and comments not counted) could not be parsed.
    case malformedEntry(index: Int, problem: EntryProblem)
    case wrongKeyLength(version: UInt32, byteCount: Int)
    case duplicateVersion(UInt32)
    /// Key versions start at 1.
    case zeroVersion
    /// `TOLLGATE_MASTER_KEY_PRIMARY` is not a positive integer.
    case invalidPrimary
    case primaryNotInKeyring(primary: UInt32, versions: [UInt32])
    /// A wrapped value names a master key version the keyring does not hold.
    case dataKeyVersionNotInKeyring(UInt32)

    public var description: String {
        switch self {
        case .missing:
            return "no master keys configured: set \(MasterKeyring.keysVariable) or \(MasterKeyring.keysFileVariable)"
                + " (entries <version>:<base64 of 32 bytes>; `tollgate` can generate one)"
        case .conflictingSources:
            return "both \(MasterKeyring.keysVariable) and \(MasterKeyring.keysFileVariable) are set; set only one"
        case .unreadableFile(let path):
            return "cannot read master keys file \(path) (\(MasterKeyring.keysFileVariable))"
        case .noEntries(let source):
            return "\(source) contains no master key entries"
        case .malformedEntry(let index, let problem):
            return "master key entry \(index) is malformed: \(problem.rawValue)"
        case .wrongKeyLength(let version, let count):
            return "master key version \(version) is \(count) bytes; AES-256 needs 32 bytes"
        case .duplicateVersion(let version):
            return "master key version \(version) appears more than once"
        case .zeroVersion:
            return "master key version 0 is not allowed; versions are positive integers"
        case .invalidPrimary:
            return "\(MasterKeyring.primaryVariable) is not a positive integer"
        case .primaryNotInKeyring(let primary, let versions):
            let list = versions.map(String.init).joined(separator: ", ")
            return "primary master key version \(primary) is not in the keyring (versions: \(list))"
        case .dataKeyVersionNotInKeyring(let version):
            return "data key is wrapped with master key version \(version), which is not in the keyring"
        }
    }
}

/// Versioned AES-256 master keys with one primary. The primary wraps new tenant data keys; the
/// others stay to unwrap older values until they are rewrapped (`rewrap`) and the key can be retired.
public struct MasterKeyring: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public static let keysVariable = "TOLLGATE_MASTER_KEYS"
    public static let keysFileVariable = "TOLLGATE_MASTER_KEYS_FILE"
    public static let primaryVariable = "TOLLGATE_MASTER_KEY_PRIMARY"

    private let keys: [UInt32: SymmetricKey]
    public let primaryVersion: UInt32
    /// All versions, ascending.
    public let versions: [UInt32]

    public init(keys: [UInt32: SymmetricKey], primary: UInt32) throws {
        for (version, key) in keys.sorted(by: { $0.key < $1.key }) {
            if version == 0 { throw MasterKeyringError.zeroVersion }
            if key.bitCount != 256 {
                throw MasterKeyringError.wrongKeyLength(version: version, byteCount: key.bitCount / 8)
            }
        }
        let versions = keys.keys.sorted()
        guard keys[primary] != nil else {
            throw MasterKeyringError.primaryNotInKeyring(primary: primary, versions: versions)
        }
        self.keys = keys
        self.primaryVersion = primary
        self.versions = versions
    }

    /// Parses the keyring syntax: entries `<version>:<base64 of 32 bytes>` separated by commas or
    /// newlines; blank entries and `#` comments (to the end of the line) are ignored. `primary` nil
    /// means the highest version. `source` names the origin in error messages.
    public static func parse(_ text: String, primary: UInt32? = nil, source: String = keysVariable) throws -> MasterKeyring {
        var keys: [UInt32: SymmetricKey] = [:]
        var index = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = rawLine.prefix { $0 != "#" }
            for rawEntry in line.split(separator: ",", omittingEmptySubsequences: false) {
                let entry = rawEntry.trimmingCharacters(in: .whitespaces)
                if entry.isEmpty { continue }
                index += 1
                guard let colon = entry.firstIndex(of: ":") else {
                    throw MasterKeyringError.malformedEntry(index: index, problem: .missingSeparator)
                }
                let versionText = entry[..<colon].trimmingCharacters(in: .whitespaces)
                let keyText = entry[entry.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                guard let version = parseVersion(versionText) else {
                    throw MasterKeyringError.malformedEntry(index: index, problem: .invalidVersion)
                }
                guard let keyBytes = Data(base64Encoded: keyText), !keyText.isEmpty else {
                    throw MasterKeyringError.malformedEntry(index: index, problem: .invalidBase64)
                }
                guard keyBytes.count == 32 else {
                    throw MasterKeyringError.wrongKeyLength(version: version, byteCount: keyBytes.count)
                }
                guard keys[version] == nil else { throw MasterKeyringError.duplicateVersion(version) }
                keys[version] = SymmetricKey(data: keyBytes)
            }
        }
        guard let highest = keys.keys.max() else { throw MasterKeyringError.noEntries(source: source) }
        return try MasterKeyring(keys: keys, primary: primary ?? highest)
    }

    /// Digits only (no sign, no spaces), 1...UInt32.max.
    static func parseVersion(_ text: String) -> UInt32? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let value = UInt32(text), value > 0
        else { return nil }
        return value
    }

    /// A fresh keyring line `<version>:<base64 of 32 random bytes>`.
    public static func generateEntry(version: UInt32) -> String {
        precondition(version > 0, "master key versions start at 1")
        let key = SymmetricKey(size: .bits256)
        let base64 = key.withUnsafeBytes { Data($0).base64EncodedString() }
        return "\(version):\(base64)"
    }

    /// Versions and primary; never key material.
    public var status: String {
        "master keyring: versions \(versions.map(String.init).joined(separator: ", ")); primary \(primaryVersion)"
    }

    public var description: String { status }
    public var debugDescription: String { "MasterKeyring(\(status))" }
    public var customMirror: Mirror {
        Mirror(self, children: ["versions": versions, "primaryVersion": primaryVersion], displayStyle: .struct)
    }

    // MARK: - Tenant data keys

    /// A fresh random 32-byte tenant data key.
    public static func generateDataKey() -> SymmetricKey {
        SymmetricKey(size: .bits256)
    }

    /// Wraps `dataKey` under the primary master key, bound to `tenantID`.
    public func wrapDataKey(_ dataKey: SymmetricKey, tenantID: UUID) throws -> Data {
        guard dataKey.bitCount == 256 else { throw EnvelopeError.invalidKeySize(bitCount: dataKey.bitCount) }
        return try dataKey.withUnsafeBytes { raw in
            try Envelope.seal(raw, key: keys[primaryVersion]!, keyVersion: primaryVersion,
                              context: Self.dataKeyContext(tenantID))
        }
    }

    /// Unwraps a data key made by `wrapDataKey` for the same tenant.
    public func unwrapDataKey(_ wrapped: some DataProtocol, tenantID: UUID) throws -> SymmetricKey {
        let version = try Envelope.keyVersion(of: wrapped)
        guard let masterKey = keys[version] else {
            throw MasterKeyringError.dataKeyVersionNotInKeyring(version)
        }
        let raw = try Envelope.open(wrapped, key: masterKey, context: Self.dataKeyContext(tenantID))
        guard raw.count == 32 else { throw EnvelopeError.invalidKeySize(bitCount: raw.count * 8) }
        return SymmetricKey(data: raw)
    }

    /// Re-wraps under the current primary. `changed` is false (and the input is returned as is)
    /// when it is already wrapped with the primary; the value is still verified in that case.
    public func rewrap(_ wrapped: some DataProtocol, tenantID: UUID) throws -> (wrapped: Data, changed: Bool) {
        let dataKey = try unwrapDataKey(wrapped, tenantID: tenantID)
        if try Envelope.keyVersion(of: wrapped) == primaryVersion {
            return (Data(wrapped), false)
        }
        return (try wrapDataKey(dataKey, tenantID: tenantID), true)
    }

    /// Seals a small value directly under the primary master key (for values that belong to no
    /// tenant's data key, such as replayable responses).
    public func seal(_ plaintext: some DataProtocol, context: EncryptionContext) throws -> Data {
        try Envelope.seal(plaintext, key: keys[primaryVersion]!, keyVersion: primaryVersion, context: context)
    }

    /// Opens a value made by `seal(_:context:)` with whichever master key version sealed it.
    public func open(_ sealed: some DataProtocol, context: EncryptionContext) throws -> Data {
        let version = try Envelope.keyVersion(of: sealed)
        guard let key = keys[version] else { throw MasterKeyringError.dataKeyVersionNotInKeyring(version) }
        return try Envelope.open(sealed, key: key, context: context)
    }

    static func dataKeyContext(_ tenantID: UUID) -> EncryptionContext {
        EncryptionContext(purpose: .tenantDataKey, tenantID: tenantID, recordID: tenantID)
    }
}
