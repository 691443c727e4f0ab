import Foundation
import HTTPTypes
import NIOHTTP1
import Testing
import TollgateDomain
@testable import TollgateProxy

@Suite("Relayed response headers")
struct ResponseHeaderTests {
    /// Content headers and Mistral's correlation id pass, whatever their case; Mistral's account
    /// rate-limit headers, cookies and hop-by-hop headers do not; the request id is ours.
    @Test func onlyContentHeadersAndCorrelationIDAreRelayed() {
        let upstream = HTTPHeaders([
            ("Content-Type", "application/json"), ("MISTRAL-Correlation-Id", "abc-123"), ("cache-control", "no-store"),
            ("x-ratelimit-remaining-tokens-minute", "999"), ("Set-Cookie", "a=b"), ("Connection", "keep-alive"),
            ("x-request-id", "mistral-own-id"), ("content-typ", "almost"), ("Content-Typee", "almost"),
        ])
        let id = UUID.random()
        let fields = ProxyPipeline.responseHeaders(upstream, requestID: id)
        #expect(fields[.contentType] == "application/json")
        #expect(fields[HTTPField.Name("mistral-correlation-id")!] == "abc-123")
        #expect(fields[.cacheControl] == "no-store")
        #expect(fields[.xRequestID] == id.apiString)
        #expect(fields[values: .xRequestID].count == 1)
        #expect(fields.count == 4, "\(fields)")
    }

    @Test func asciiComparisonIgnoresCaseOnlyForLetters() {
        #expect(ProxyPipeline.asciiCaseInsensitiveEqual("content-type", "Content-TYPE"))
        #expect(!ProxyPipeline.asciiCaseInsensitiveEqual("content-type", "content_type"))
        #expect(!ProxyPipeline.asciiCaseInsensitiveEqual("a", "ab"))
        #expect(!ProxyPipeline.asciiCaseInsensitiveEqual("{", "["))   // 0x7B vs 0x5B: folding non-letters would match them
    }
}
