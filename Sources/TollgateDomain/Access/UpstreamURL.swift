import Foundation

/// Validates a credential's base URL. Tenants choose it, so it must not point Tollgate at internal
/// services (SSRF): only https, and no loopback, private, link-local or otherwise internal literal
/// addresses unless the operator allows them (`TOLLGATE_ALLOW_PRIVATE_UPSTREAMS`, for local stacks).
///
/// Host names are checked by form only; a public name resolving to a private address is caught by
/// the data plane when it connects, not here.
public struct UpstreamURLPolicy: Sendable {
    public var allowInsecureAndPrivate: Bool

    public init(allowInsecureAndPrivate: Bool = false) {
        self.allowInsecureAndPrivate = allowInsecureAndPrivate
    }

    public static let defaultBaseURL = "https://api.mistral.ai"

    /// Returns the normalised URL (no trailing slash) or a reason it is refused.
    public func validate(_ text: String) -> Result<String, UpstreamURLError> {
        guard text.utf8.count <= 2000, let components = URLComponents(string: text),
              let scheme = components.scheme?.lowercased(), let host = components.host?.lowercased(), !host.isEmpty
        else { return .failure(.malformed) }
        guard components.user == nil, components.password == nil else { return .failure(.credentialsInURL) }
        guard components.query == nil, components.fragment == nil else { return .failure(.queryOrFragment) }
        guard scheme == "https" || (scheme == "http" && allowInsecureAndPrivate) else {
            return .failure(.notHTTPS)
        }
        if !allowInsecureAndPrivate, Self.isInternal(host: host) { return .failure(.internalAddress(host)) }
        var normalised = "\(scheme)://\(components.percentEncodedHost ?? host)"
        if let port = components.port { normalised += ":\(port)" }
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        return .success(normalised + path)
    }

    static func isInternal(host rawHost: String) -> Bool {
        let host = rawHost.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if host == "localhost" || host.hasSuffix(".localhost") || host.hasSuffix(".local")
            || host.hasSuffix(".internal") || !host.contains(".") && !host.contains(":") {
            return true
        }
        if let v4 = ipv4(host) {
            let (a, b) = (v4[0], v4[1])
            return a == 0 || a == 10 || a == 127 || (a == 169 && b == 254) || (a == 172 && (16...31).contains(b))
                || (a == 192 && b == 168) || (a == 100 && (64...127).contains(b)) || a >= 224
        }
        if host.contains(":") {
            // IPv6 literal: loopback, unspecified, unique-local (fc00::/7), link-local (fe80::/10),
            // and IPv4-mapped addresses are all refused.
            let lower = host.lowercased()
            return lower == "::1" || lower == "::" || lower.hasPrefix("fc") || lower.hasPrefix("fd")
                || lower.hasPrefix("fe8") || lower.hasPrefix("fe9") || lower.hasPrefix("fea") || lower.hasPrefix("feb")
                || lower.hasPrefix("::ffff:") || lower.hasPrefix("0:")
        }
        // Numeric forms that are not dotted quads (e.g. 2130706433, 0x7f.1) are refused outright.
        return host.allSatisfy { $0.isNumber || $0 == "." || $0 == "x" } && host.first?.isNumber == true
    }

    private static func ipv4(_ host: String) -> [Int]? {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let numbers = parts.compactMap { part -> Int? in
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isNumber) else { return nil }
            return Int(part).flatMap { $0 <= 255 ? $0 : nil }
        }
        return numbers.count == 4 ? numbers : nil
    }
}

public enum UpstreamURLError: Error, Equatable, CustomStringConvertible {
    case malformed
    case notHTTPS
    case credentialsInURL
    case queryOrFragment
    case internalAddress(String)

    public var description: String {
        switch self {
        case .malformed: "must be an absolute URL such as https://api.mistral.ai"
        case .notHTTPS: "must use https"
        case .credentialsInURL: "must not contain a user name or password"
        case .queryOrFragment: "must not contain a query or fragment"
        case .internalAddress(let host):
            "'\(host)' is a loopback, private, link-local or internal address; refused to prevent SSRF"
        }
    }
}
