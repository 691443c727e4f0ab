import Testing
@testable import TollgateDomain

@Suite struct UpstreamURLTests {
    static let strict = UpstreamURLPolicy()
    static let lenient = UpstreamURLPolicy(allowInsecureAndPrivate: true)

    @Test func defaults() {
        #expect(UpstreamURLPolicy().allowInsecureAndPrivate == false)
        #expect(UpstreamURLPolicy.defaultBaseURL == "https://api.mistral.ai")
        #expect(Self.strict.validate(UpstreamURLPolicy.defaultBaseURL) == .success("https://api.mistral.ai"))
    }

    @Test(arguments: [
        ("https://api.mistral.ai", "https://api.mistral.ai"),
        ("https://api.mistral.ai/", "https://api.mistral.ai"),
        ("https://api.mistral.ai///", "https://api.mistral.ai"),
        ("HTTPS://api.mistral.ai/", "https://api.mistral.ai"),
        ("https://api.mistral.ai/v1/", "https://api.mistral.ai/v1"),
        ("https://api.mistral.ai:443/", "https://api.mistral.ai:443"),
        ("https://api.mistral.ai:8443/v1", "https://api.mistral.ai:8443/v1"),
        ("https://codestral.mistral.ai", "https://codestral.mistral.ai"),
        ("https://codestral.mistral.ai/v1", "https://codestral.mistral.ai/v1"),
        ("https://eu.api.mistral.ai/", "https://eu.api.mistral.ai"),
        ("https://mistral-proxy.example.com/tenant/a", "https://mistral-proxy.example.com/tenant/a"),
        ("https://8.8.8.8/", "https://8.8.8.8"),
        ("https://172.32.0.1/", "https://172.32.0.1"),
        ("https://172.15.255.255", "https://172.15.255.255"),
        ("https://[2001:db8::1]/", "https://[2001:db8::1]"),
    ])
    func acceptsPublicHTTPS(_ input: String, _ normalised: String) {
        #expect(Self.strict.validate(input) == .success(normalised))
        #expect(Self.lenient.validate(input) == .success(normalised))
    }

    static let internalURLs = [
        "https://localhost/", "https://LOCALHOST:8443", "https://api.localhost/", "https://printer.local/",
        "https://127.0.0.1/", "https://127.255.255.254:8443/v1", "https://10.0.0.1/", "https://10.255.255.255/",
        "https://172.16.0.1/", "https://172.31.255.255/", "https://192.168.1.1/", "https://169.254.169.254/latest",
        "https://100.64.0.1/", "https://224.0.0.1/", "https://255.255.255.255/",
        "https://[::1]/", "https://[::1]:8443/v1", "https://[::]/", "https://[fc00::1]/", "https://[fd12:3456::1]/",
        "https://[fe80::1]/", "https://[::ffff:127.0.0.1]/", "https://[::ffff:a9fe:a9fe]/", "https://[0:0:0:0:0:0:0:1]/",
        "https://0.0.0.0/", "https://2130706433/", "https://0x7f000001/", "https://127.1/", "https://0177.0.0.1/",
        "https://metadata.google.internal/computeMetadata/v1", "https://metadata/", "https://intranet/",
        "https://%6c%6f%63%61%6c%68%6f%73%74/",
    ]

    @Test(arguments: internalURLs)
    func refusesInternalAddresses(_ url: String) {
        switch Self.strict.validate(url) {
        case .failure(.internalAddress): break
        case let other: Issue.record("\(url): \(other)")
        }
    }

    @Test(arguments: internalURLs)
    func internalAddressesAreAllowedWhenConfigured(_ url: String) {
        guard case .success = Self.lenient.validate(url) else {
            Issue.record("\(url): \(Self.lenient.validate(url))")
            return
        }
    }

    @Test func lenientNormalisesLocalURLs() {
        #expect(Self.lenient.validate("http://localhost:8080/") == .success("http://localhost:8080"))
        #expect(Self.lenient.validate("http://127.0.0.1:9000/v1/") == .success("http://127.0.0.1:9000/v1"))
        #expect(Self.lenient.validate("http://mock-mistral:8080") == .success("http://mock-mistral:8080"))
        #expect(Self.lenient.validate("https://[::1]:8443/") == .success("https://[::1]:8443"))
    }

    @Test(arguments: ["http://api.mistral.ai", "http://localhost:8080", "ftp://api.mistral.ai", "ws://api.mistral.ai",
                      "file://api.mistral.ai/etc/passwd", "gopher://api.mistral.ai"])
    func refusesNonHTTPS(_ url: String) {
        #expect(Self.strict.validate(url) == .failure(.notHTTPS))
    }

    @Test func lenientAllowsPlainHTTPButNoOtherScheme() {
        #expect(Self.lenient.validate("http://api.mistral.ai/") == .success("http://api.mistral.ai"))
        #expect(Self.lenient.validate("ftp://api.mistral.ai") == .failure(.notHTTPS))
        #expect(Self.lenient.validate("file://localhost/etc/passwd") == .failure(.notHTTPS))
    }

    @Test(arguments: ["https://user:pass@api.mistral.ai", "https://user@api.mistral.ai/", "https://:pass@api.mistral.ai/",
                      "https://api.mistral.ai@evil.example.com/"])
    func refusesCredentials(_ url: String) {
        #expect(Self.strict.validate(url) == .failure(.credentialsInURL))
        #expect(Self.lenient.validate(url) == .failure(.credentialsInURL))
    }

    @Test(arguments: ["https://api.mistral.ai/?a=b", "https://api.mistral.ai/v1?x", "https://api.mistral.ai/?",
                      "https://api.mistral.ai/#frag", "https://api.mistral.ai#", "https://api.mistral.ai/v1?a=1#b"])
    func refusesQueryAndFragment(_ url: String) {
        #expect(Self.strict.validate(url) == .failure(.queryOrFragment))
        #expect(Self.lenient.validate(url) == .failure(.queryOrFragment))
    }

    @Test(arguments: ["", "api.mistral.ai", "//api.mistral.ai", "https://", "https:///v1", "https:api.mistral.ai",
                      "not a url", "https://api.mistral.ai/" + String(repeating: "a", count: 2_000)])
    func refusesMalformed(_ url: String) {
        #expect(Self.strict.validate(url) == .failure(.malformed))
    }

    @Test func errorDescriptions() {
        #expect(UpstreamURLError.internalAddress("10.0.0.1").description.contains("10.0.0.1"))
        #expect(UpstreamURLError.notHTTPS.description.contains("https"))
    }

    // MARK: Bugs found (see report)

    @Test(arguments: ["https://localhost./", "https://metadata.google.internal./", "https://printer.local./"])
    func refusesTrailingDotInternalNames(_ url: String) {
        guard case .failure(.internalAddress) = Self.strict.validate(url) else {
            Issue.record("\(url) accepted: \(Self.strict.validate(url))")
            return
        }
    }

    @Test(arguments: ["https://0x7f.1/", "https://0x7f.0.0.1/", "https://0xa.0.0.1/", "https://012.0.0.1/"])
    func refusesNonDecimalDottedIPv4(_ url: String) {
        guard case .failure(.internalAddress) = Self.strict.validate(url) else {
            Issue.record("\(url) accepted: \(Self.strict.validate(url))")
            return
        }
    }

    @Test(arguments: ["https://[0000::1]/", "https://[::0:1]/", "https://[0000:0000:0000:0000:0000:0000:0000:0001]/",
                      "https://[00::]/"])
    func refusesNonCanonicalIPv6Loopback(_ url: String) {
        guard case .failure(.internalAddress) = Self.strict.validate(url) else {
            Issue.record("\(url) accepted: \(Self.strict.validate(url))")
            return
        }
    }

    @Test
    func normalisesHostCase() {
        #expect(Self.strict.validate("https://API.Mistral.AI/v1") == .success("https://api.mistral.ai/v1"))
    }
}
