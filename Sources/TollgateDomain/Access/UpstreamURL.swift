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

    /// Returns the normalised URL (lower-case host, no trailing slash) or a reason it is refused.
    public func validate(_ text: String) -> Result<String, UpstreamURLError> {
        guard text.utf8.count <= 2000, let components = URLComponents(string: text),
              let scheme = components.scheme?.lowercased(), let rawHost = components.host, !rawHost.isEmpty
        else { return .failure(.malformed) }
        guard components.user == nil, components.password == nil else { return .failure(.credentialsInURL) }
        guard components.query == nil, components.fragment == nil else { return .failure(.queryOrFragment) }
        guard scheme == "https" || (scheme == "http" && allowInsecureAndPrivate) else {
            return .failure(.notHTTPS)
        }
        let host = rawHost.lowercased()
        if !allowInsecureAndPrivate, Self.isInternal(host: host) { return .failure(.internalAddress(host)) }
        let hostPart = (components.percentEncodedHost ?? host).lowercased()
        var normalised = "\(scheme)://\(hostPart)"
        if let port = components.port { normalised += ":\(port)" }
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        return .success(normalised + path)
    }

    static func isInternal(host rawHost: String) -> Bool {
        var host = rawHost.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        // "localhost." and "localhost" are the same name to a resolver.
        while host.hasSuffix(".") { host.removeLast() }
        if host.isEmpty { return true }
        if host.contains(":") { return IPv6Literal(host).map(\.isInternal) ?? true }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        if let last = labels.last, last.allSatisfy({ $0.isHexDigit || $0 == "x" }), last.first?.isNumber == true {
            // A numeric host: only a canonical dotted quad (no leading zeros, which resolvers read
            // as octal, no hex, no shortened forms such as 2130706433 or 127.1) is judged by value.
            guard let v4 = canonicalIPv4(labels) else { return true }
            return isInternalIPv4(v4)
        }
        return host == "localhost" || host.hasSuffix(".localhost") || host.hasSuffix(".local")
            || host.hasSuffix(".internal") || host.hasSuffix(".home.arpa") || !host.contains(".")
    }

    static func isInternalIPv4(_ v4: [Int]) -> Bool {
        let (a, b) = (v4[0], v4[1])
        return a == 0 || a == 10 || a == 127 || (a == 169 && b == 254) || (a == 172 && (16...31).contains(b))
            || (a == 192 && b == 168) || (a == 100 && (64...127).contains(b)) || (a == 192 && b == 0 && v4[2] == 0)
            || (a == 198 && (18...19).contains(b)) || a >= 224
    }

    private static func canonicalIPv4(_ labels: [Substring]) -> [Int]? {
        guard labels.count == 4 else { return nil }
        var numbers: [Int] = []
        for label in labels {
            guard !label.isEmpty, label.count <= 3, label.allSatisfy(\.isASCIIDigit),
                  label == "0" || label.first != "0", let value = Int(label), value <= 255 else { return nil }
            numbers.append(value)
        }
        return numbers
    }
}

/// An IPv6 address literal parsed to its 16 bytes, so that every spelling of the same address
/// (`::1`, `0:0::1`, `0000:…:0001`) is judged alike.
struct IPv6Literal {
    let bytes: [UInt8]

    init?(_ text: String) {
        var groups: [UInt16] = []
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func parse(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, piece.contains(".") {
                    // Embedded IPv4 (e.g. ::ffff:127.0.0.1).
                    let octets = piece.split(separator: ".").compactMap { UInt8($0) }
                    guard octets.count == 4 else { return nil }
                    result.append(UInt16(octets[0]) << 8 | UInt16(octets[1]))
                    result.append(UInt16(octets[2]) << 8 | UInt16(octets[3]))
                    continue
                }
                guard (1...4).contains(piece.count), let value = UInt16(piece, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        guard let head = parse(halves[0]) else { return nil }
        if halves.count == 2 {
            guard let tail = parse(halves[1]), head.count + tail.count < 8 else { return nil }
            groups = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard head.count == 8 else { return nil }
            groups = head
        }
        bytes = groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    var isInternal: Bool {
        let zeroPrefix10 = bytes[0..<10].allSatisfy { $0 == 0 }
        if zeroPrefix10 && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return UpstreamURLPolicy.isInternalIPv4(bytes[12..<16].map(Int.init))  // IPv4-mapped
        }
        if bytes[0..<12].allSatisfy({ $0 == 0 }) { return true }  // ::, ::1 and IPv4-compatible
        return (bytes[0] & 0xFE) == 0xFC            // fc00::/7 unique local
            || (bytes[0] == 0xFE && (bytes[1] & 0xC0) == 0x80)  // fe80::/10 link-local
            || bytes[0] == 0xFF                     // multicast
            || (bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xFF && bytes[3] == 0x9B)  // NAT64
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
