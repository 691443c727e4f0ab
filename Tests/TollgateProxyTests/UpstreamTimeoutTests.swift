import AsyncHTTPClient
import Foundation
import MockMistral
import NIOCore
import Testing
import TollgateDomain
import TollgateProxy

/// The upstream timers on their own: the first-byte timeout until Mistral's response head
/// arrives, the idle timeout between body chunks after it.
@Suite("Upstream timeouts")
struct UpstreamTimeoutTests {
    static let streamBody = Data(#"{"model":"mistral-small-latest","stream":true,"max_tokens":300,"messages":[{"role":"user","content":"Tell me a story."}]}"#.utf8)

    /// A stream that goes quiet mid-way (connection open, no bytes) is cut by the idle timer, long
    /// before the HTTP client's read timeout (120 s here) or the mock's 60 s stall would end it: the
    /// client sees the stream end, the upstream request is dropped, and the request settles once, at
    /// the conservative estimate.
    @Test func streamStallingMidWayIsCutByTheIdleTimer() async throws {
        try await ProxyHarness.run(KeyOptions(budget: Budget(limit: Money(nanos: 1_000_000_000), period: .daily)),
                                   configure: { $0.idleChunkTimeout = .milliseconds(1000) }) { h in
            h.mock.inject(.stallMidStream(afterChunks: 3, stall: .seconds(60)), matching: "/v1/chat/completions")
            let port = try #require(h.client.port)
            let clock = ContinuousClock()
            let started = clock.now
            let response = try await HTTPClient.shared.execute(chatRequest(port: port, key: h.seed.secret, body: Self.streamBody),
                                                               timeout: .seconds(60))
            #expect(response.status == .ok)
            var received = ""
            var streamError: (any Error)?
            do {
                for try await chunk in response.body { received += String(buffer: chunk) }
            } catch {
                streamError = error
            }
            let elapsed = clock.now - started
            // The stream ended cleanly for the client, after the three events sent before the stall.
            #expect(streamError == nil, "the relay ends the client's stream properly: \(String(describing: streamError))")
            #expect(received.components(separatedBy: "\n\n").filter { !$0.isEmpty }.count == 3)
            #expect(!received.contains("[DONE]"))
            #expect(elapsed >= .milliseconds(1000))
            #expect(elapsed < .seconds(30), "cut by the idle timer, not by the 60 s stall or the 120 s read timeout")

            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.count == 1)
            let row = try #require(rows.first)
            #expect(row.estimated)
            #expect(row.completionTokens == 300, "the conservative estimate: the whole max_tokens")
            #expect(row.statusCode == 502)
            let window = try await h.budgetWindow(owner: h.seed.keyID)
            #expect(window.reserved == 0)
            #expect(window.spent == row.costNanos)
            // The upstream request was dropped: the mock's stall ended with its client and the
            // stream never completed.
            #expect(h.mock.stats.streamsStarted == 1)
            #expect(h.mock.stats.streamsCompleted == 0)
        }
    }

    /// The idle timer restarts with every chunk: a stream paced well inside it but lasting longer
    /// runs to the end and settles its real usage. (Chunks every 100 ms against a 2.5 s timer: a
    /// 1 s timer was once cut by a stall of the loaded 2-core machine running the whole suite.)
    @Test func steadyStreamLongerThanTheIdleTimeoutIsNotCut() async throws {
        try await ProxyHarness.run(configure: { $0.idleChunkTimeout = .milliseconds(2500) }) { h in
            h.mock.updateConfiguration { $0.streamChunkDelay = .milliseconds(100); $0.completionTokens = 30; $0.tokensPerChunk = 1 }
            let port = try #require(h.client.port)
            let clock = ContinuousClock()
            let started = clock.now
            let response = try await HTTPClient.shared.execute(chatRequest(port: port, key: h.seed.secret, body: Self.streamBody),
                                                               timeout: .seconds(60))
            let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
            #expect(clock.now - started >= .seconds(3), "the whole stream outlasted the idle timeout")
            #expect(body.hasSuffix("data: [DONE]\n\n"))
            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.first?.estimated == false)
            #expect(rows.first?.completionTokens == 30)
        }
    }

    /// A response head slower than the idle timeout but within the first-byte timeout is fine: the
    /// idle timer only starts once the head is in.
    @Test func slowHeadWithinTheFirstByteTimeoutIsNotCutByTheIdleTimer() async throws {
        try await ProxyHarness.run(configure: {
            $0.idleChunkTimeout = .milliseconds(300)
            $0.firstByteTimeout = .seconds(30)
        }) { h in
            h.mock.inject(.slowFirstByte(.milliseconds(1200)), matching: "/v1/chat/completions")
            let reply = try await h.post("/v1/chat/completions", chatBody)
            #expect(reply.status == .ok, "\(reply.body)")
            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.first?.estimated == false)
            #expect(rows.first?.completionTokens ?? 0 > 0)
        }
    }

    /// No response head within the first-byte timeout: 504 in Mistral's error shape, no retry (the
    /// request may have reached Mistral), one row at no cost. The mock would have answered 200 after
    /// 4 s, so the status alone shows the head wait was cut. (The timer covers connect and send too:
    /// a 500 ms timer once expired on CI before the loaded mock had read the request at all.)
    @Test func noHeadWithinTheFirstByteTimeoutIsA504() async throws {
        try await ProxyHarness.run(configure: {
            $0.firstByteTimeout = .milliseconds(1500)
            $0.idleChunkTimeout = .seconds(30)
        }) { h in
            h.mock.inject(.slowFirstByte(.seconds(4)), matching: "/v1/chat/completions")
            let reply = try await h.post("/v1/chat/completions", chatBody)
            #expect(reply.status == .gatewayTimeout, "\(reply.body)")
            #expect(reply.json["object"] as? String == "error")
            #expect(reply.json["code"] as? String == "upstream_timeout")
            // The mock logs a request when it has read it; on a loaded machine that can trail the
            // proxy's 504, so wait for the log to catch up. Any retry was sent before the 504 and
            // would be logged by then too. Zero entries is possible and fine: the timer can expire
            // before the mock reads the request; what must never happen is a second attempt.
            let deadline = ContinuousClock.now + .seconds(3)
            while h.mock.requestLog.count == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            let rows = try await h.settled(expectedRows: 1)
            #expect(rows.map(\.costNanos) == [0])
            #expect(h.mock.requestLog.count <= 1, "not retried")
        }
    }
}
