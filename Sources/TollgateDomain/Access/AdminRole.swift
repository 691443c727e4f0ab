/// Who an admin token speaks for.
public enum AdminRole: String, Sendable, Hashable, CaseIterable, Codable {
    /// Operates the platform: creates tenants, edits platform prices, rotates the keyring.
    case platformAdmin = "platform_admin"
    /// Manages one tenant: credentials, keys, budgets, its own tokens.
    case tenantAdmin = "tenant_admin"
    /// Reads one tenant's objects and usage; cannot change anything.
    case tenantViewer = "tenant_viewer"

    public var isTenantScoped: Bool { self != .platformAdmin }
    public var canMutate: Bool { self != .tenantViewer }
}

/// The status a key shows: `expired` is derived from the expiry, not stored.
public enum KeyStatus: String, Sendable, Hashable, CaseIterable {
    case active, revoked, expired
}

public enum TenantStatus: String, Sendable, Hashable, CaseIterable {
    case active, suspended
}

public enum CredentialStatus: String, Sendable, Hashable, CaseIterable {
    case active, disabled
}
