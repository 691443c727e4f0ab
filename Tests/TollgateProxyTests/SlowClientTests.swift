import Foundation
import NIOCore
import Testing
import TollgateProxy

/// Slow clients cannot pin the proxy's connections: a request head must arrive within the header
/// timeout of its first byte, a body within the body timeout of its head (then: 408 in Mistral's
/// error shape, and the connection closes). The idle timeout (75 s by default) is far beyond every
/// wait here, so each close below is the work of the new timers.
@Suite("Slow clients")
struct SlowClientTests {
    static func configure(_ configuration: inout ProxyConfiguration) {
        configuration.headerTimeout = .milliseconds(500)
        configuration.bodyTimeout = .seconds(1)
    }

    static let chat = #"{"model":"mistral-small-latest","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#

    static func head(key: String, contentLength: Int) -> String {
        "POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nAuthorization: Bearer \(key)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(contentLength)\r\n\r\n"
    }

    /// Slowloris: a head trickled a byte every 100 ms (each byte well inside the header timeout,
    /// so only a timer on the whole head can end it) is closed without an answer.
    @Test func trickledRequestHeadIsClosed() async throws {
        try await ProxyHarness.run(configure: Self.configure) { h in
            let port = try #require(h.client.port)
            let connection = try await RawConnection.open(port: port)
            let clock = ContinuousClock()
            let started = clock.now
            let endless = Self.head(key: h.seed.secret, contentLength: 10).replacingOccurrences(of: "\r\n\r\n", with: "\r\nX-Slow: ")
                + String(repeating: "a", count: 400)
            let sent = await connection.trickle(endless, every: .milliseconds(100))
            #expect(await connection.closed(within: .seconds(5)))
            #expect(clock.now - started >= .milliseconds(500))
            #expect(sent < endless.utf8.count, "closed while the client was still trickling")
            #expect(connection.received.isEmpty, "no request, so no answer")
            #expect(h.mock.requestLog.count == 0)
        }
    }

    /// A body that stops half-way (then trickles) gets a 408 in Mistral's error shape once the body
    /// timeout has passed, and the connection closes; nothing is reserved or forwarded.
    @Test func slowBodyIsAnswered408AndClosed() async throws {
        try await ProxyHarness.run(configure: Self.configure) { h in
            let port = try #require(h.client.port)
            let connection = try await RawConnection.open(port: port)
            let body = Self.chat
            await connection.send(Self.head(key: h.seed.secret, contentLength: body.utf8.count) + String(body.prefix(20)))
            await connection.trickle(String(body.dropFirst(20)), every: .milliseconds(150))
            #expect(await connection.closed(within: .seconds(10)))
            let reply = connection.received
            #expect(reply.hasPrefix("HTTP/1.1 408"), "\(reply)")
            #expect(reply.lowercased().contains("connection: close"))
            #expect(reply.contains(#""object":"error""#))
            #expect(reply.contains(#""code":"request_timeout""#))
            #expect(reply.contains(#""type":"invalid_request_error""#))
            #expect(reply.lowercased().contains("x-request-id: "))
            #expect(h.mock.requestLog.count == 0, "nothing forwarded")
            let rows = try await h.settled(expectedRows: 0)
            #expect(rows.isEmpty, "nothing reserved, nothing to settle")
        }
    }

    /// A request answered before its body was read (here a 401) whose body then trickles: Hummingbird
    /// would drain that body for ever; the body timer closes the connection.
    @Test func slowBodyAfterAnEarlyAnswerIsClosed() async throws {
        try await ProxyHarness.run(configure: Self.configure) { h in
            let port = try #require(h.client.port)
            let connection = try await RawConnection.open(port: port)
            await connection.send(Self.head(key: "tg_live_not_a_real_key", contentLength: 500) + "{")
            #expect(await connection.receive("HTTP/1.1 401", within: .seconds(10)))
            let sent = await connection.trickle(String(repeating: " ", count: 200), every: .milliseconds(100))
            #expect(await connection.closed(within: .seconds(5)))
            #expect(sent < 200, "closed while the body was still trickling")
        }
    }

    /// The head timer starts at a request's first byte: a keep-alive connection idle between
    /// requests for longer than the header timeout is not closed, and a body sent in parts within
    /// the body timeout is fine.
    @Test func normalRequestsAreUnaffected() async throws {
        try await ProxyHarness.run(configure: Self.configure) { h in
            let port = try #require(h.client.port)
            let connection = try await RawConnection.open(port: port)
            let body = Self.chat
            await connection.send(Self.head(key: h.seed.secret, contentLength: body.utf8.count) + body)
            #expect(await connection.receive("\"usage\"", within: .seconds(10)))
            try await Task.sleep(for: .milliseconds(1500))  // idle, three header timeouts long
            #expect(connection.isOpen)
            // Second request on the same connection: head, then the body in two parts 300 ms apart.
            await connection.send(Self.head(key: h.seed.secret, contentLength: body.utf8.count) + String(body.prefix(30)))
            try await Task.sleep(for: .milliseconds(300))
            await connection.send(String(body.dropFirst(30)))
            #expect(await connection.receive("HTTP/1.1 200", within: .seconds(10)))
            let deadline = ContinuousClock.now + .seconds(10)
            while connection.received.components(separatedBy: "HTTP/1.1 200").count < 3, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(connection.received.components(separatedBy: "HTTP/1.1 200").count == 3, "two answers: \(connection.received)")
            #expect(connection.isOpen)
            await connection.close()
            // And the ordinary client on the same server.
            #expect(try await h.post("/v1/chat/completions", chatBody).status == .ok)
            #expect(h.mock.requestLog.count == 3)
        }
    }

    /// Bounded resources: 100 connections that stop half-way through their head and 100 that stop
    /// half-way through their body are all closed by the server (the latter after a 408), nothing
    /// reaches Mistral, and the server still answers afterwards.
    @Test func hundredsOfStalledConnectionsAreAllClosed() async throws {
        try await ProxyHarness.run(configure: Self.configure) { h in
            let port = try #require(h.client.port)
            let body = Self.chat
            let heads = try await Self.open(100, port: port)
            let bodies = try await Self.open(100, port: port)
            for connection in heads { await connection.send("POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\nAuthor") }
            for connection in bodies {
                await connection.send(Self.head(key: h.seed.secret, contentLength: body.utf8.count) + String(body.prefix(10)))
            }
            var stillOpen = 0
            for connection in heads + bodies where !(await connection.closed(within: .seconds(20))) { stillOpen += 1 }
            #expect(stillOpen == 0, "every stalled connection was closed by the server")
            #expect(heads.allSatisfy { $0.received.isEmpty })
            #expect(bodies.filter { $0.received.hasPrefix("HTTP/1.1 408") }.count == 100)
            #expect(h.mock.requestLog.count == 0)
            #expect(try await h.post("/v1/chat/completions", chatBody).status == .ok)
        }
    }

    static func open(_ count: Int, port: Int) async throws -> [RawConnection] {
        var connections: [RawConnection] = []
        for _ in 0..<count { connections.append(try await RawConnection.open(port: port)) }
        return connections
    }
}
