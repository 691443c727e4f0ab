import Foundation

extension MasterKeyring {
    /// Loads the keyring from the process environment (see `load(environment:)`).
    public static func loadFromProcessEnvironment() throws -> MasterKeyring {
        try load(environment: ProcessInfo.processInfo.environment)
    }

    /// Loads the keyring from `TOLLGATE_MASTER_KEYS` (entries inline) or from the file named by
    /// `TOLLGATE_MASTER_KEYS_FILE` (exactly one of them; an empty value counts as unset).
    ///
    /// Syntax: entries `<version>:<base64 of 32 bytes>` separated by commas or newlines; blank
    /// lines and `#` comments are ignored. Primary: `TOLLGATE_MASTER_KEY_PRIMARY` if set, otherwise
    /// the highest version.
    public static func load(environment: [String: String]) throws -> MasterKeyring {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !raw.isEmpty
            else { return nil }
            return raw
        }
        var primary: UInt32?
        if let text = value(primaryVariable) {
            guard let version = parseVersion(text) else { throw MasterKeyringError.invalidPrimary }
            primary = version
        }
        switch (value(keysVariable), value(keysFileVariable)) {
        case (nil, nil):
            throw MasterKeyringError.missing
        case (.some, .some):
            throw MasterKeyringError.conflictingSources
        case (let inline?, nil):
            return try parse(inline, primary: primary, source: keysVariable)
        case (nil, let path?):
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw MasterKeyringError.unreadableFile(path: path)
            }
            return try parse(text, primary: primary, source: "master keys file \(path)")
        }
    }
}
